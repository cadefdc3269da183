//! Signed approval links: `{base}/remediation/{job}/{approve|reject}?sig=...`, where the
//! signature is HMAC-SHA256 over the job id and the decision with a key from the
//! environment. A link cannot be forged for another job or turned from reject into approve.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The signature for a decision on a job.
pub fn sign(key: &[u8], job_id: &str, decision: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(job_id.as_bytes());
    mac.update(b"\n");
    mac.update(decision.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// Whether `sig` is the signature for the decision (constant time).
pub fn verify(key: &[u8], job_id: &str, decision: &str, sig: &str) -> bool {
    let Ok(bytes) = hex::decode(sig) else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(job_id.as_bytes());
    mac.update(b"\n");
    mac.update(decision.as_bytes());
    mac.verify_slice(&bytes).is_ok()
}

/// HMAC-SHA256 of a webhook body, hex.
pub fn sign_body(key: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// The approve and reject links.
pub fn links(base_url: &str, key: &[u8], job_id: &str) -> (String, String) {
    let link = |d: &str| {
        format!(
            "{base_url}/remediation/{job_id}/{d}?sig={}",
            sign(key, job_id, d)
        )
    };
    (link("approve"), link("reject"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_verify_only_for_their_job_and_decision() {
        let (approve, _) = links("https://tw.example", b"k", "rem-1");
        let sig = approve.split("sig=").nth(1).unwrap();
        assert!(verify(b"k", "rem-1", "approve", sig));
        assert!(!verify(b"k", "rem-2", "approve", sig));
        assert!(!verify(b"k", "rem-1", "reject", sig));
        assert!(!verify(b"other", "rem-1", "approve", sig));
        assert!(!verify(b"k", "rem-1", "approve", "zz"));
    }
}

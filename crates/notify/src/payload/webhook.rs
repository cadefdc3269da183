//! Generic webhook bodies and their HMAC-SHA256 signature.
//!
//! The signature is `sha256=` followed by the lowercase hex HMAC-SHA256, keyed with the
//! signing secret, over the bytes `{timestamp}.{body}` where `timestamp` is the value of the
//! `X-Trailwatch-Timestamp` header (Unix seconds) and `body` the exact request body.

use hmac::{Hmac, Mac};
use minijinja::{AutoEscape, Environment, context};
use sha2::Sha256;
use trailwatch_alert::Alert;

/// The header carrying the delivery id (stable across retries and restarts).
pub const DELIVERY_HEADER: &str = "X-Trailwatch-Delivery";
/// The header carrying the Unix time the signature was made.
pub const TIMESTAMP_HEADER: &str = "X-Trailwatch-Timestamp";

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    // Every `{{ expr }}` is written as a JSON value (strings quoted and escaped), so a
    // template cannot produce broken JSON by interpolating a title with quotes in it.
    env.set_auto_escape_callback(|_| AutoEscape::Json);
    env
}

/// Checks that a template compiles (at config load).
pub fn compile_check(template: &str) -> Result<(), String> {
    let env = environment();
    env.template_from_str(template)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// The request body: the template rendered with `alert` and `delivery_id`, which must be
/// JSON, or the alert's own JSON when there is no template.
pub fn body(template: Option<&str>, alert: &Alert, delivery_id: &str) -> Result<Vec<u8>, String> {
    let Some(template) = template else {
        return serde_json::to_vec(alert).map_err(|e| e.to_string());
    };
    let env = environment();
    let rendered = env
        .render_str(
            template,
            context! {
                alert => minijinja::Value::from(minijinja::value::Serde(alert)),
                delivery_id => delivery_id,
            },
        )
        .map_err(|e| format!("template: {e}"))?;
    serde_json::from_str::<serde::de::IgnoredAny>(&rendered)
        .map_err(|e| format!("template output is not JSON ({e}): {rendered}"))?;
    Ok(rendered.into_bytes())
}

/// `sha256=<hex>` over `{timestamp}.{body}`.
pub fn signature(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC-SHA256 takes keys of any length"));
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// What a receiver does: recomputes the signature and compares in constant time.
pub fn verify(secret: &[u8], timestamp: &str, body: &[u8], header: &str) -> bool {
    let Some(hex_sig) = header.strip_prefix("sha256=") else {
        return false;
    };
    let Ok(expected) = hex::decode(hex_sig) else {
        return false;
    };
    let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(secret) else {
        return false;
    };
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.verify_slice(&expected).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample_alert;
    use trailwatch_alert::Severity;

    #[test]
    fn signature_matches_a_known_vector() {
        // Computed independently: printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac s3cret
        let sig = signature(b"s3cret", 1_700_000_000, br#"{"a":1}"#);
        assert_eq!(
            sig,
            "sha256=1698a50bc74d1ff1db85c4e0a5297c2ad9fdba245d5737cdb789e4cc6e098940"
        );
        assert!(verify(b"s3cret", "1700000000", br#"{"a":1}"#, &sig));
        assert!(!verify(b"s3cret", "1700000001", br#"{"a":1}"#, &sig));
        assert!(!verify(b"other", "1700000000", br#"{"a":1}"#, &sig));
        assert!(!verify(b"s3cret", "1700000000", br#"{"a":2}"#, &sig));
    }

    #[test]
    fn default_body_is_the_alert_json() {
        let alert = sample_alert("r", Severity::Low, "k");
        let body = body(None, &alert, "d1").unwrap();
        let back: Alert = serde_json::from_slice(&body).unwrap();
        assert_eq!(back, alert);
    }

    #[test]
    fn template_values_are_json_escaped() {
        let mut alert = sample_alert("r", Severity::Low, "k");
        alert.title = "he said \"hi\"\n<b>".into();
        let out = body(
            Some(r#"{"text": {{ alert.title }}, "sev": {{ alert.severity }}, "id": {{ delivery_id }}}"#),
            &alert,
            "d1",
        )
        .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["text"], "he said \"hi\"\n<b>");
        assert_eq!(v["sev"], "low");
        assert_eq!(v["id"], "d1");
        assert!(body(Some("not json {{ alert.rule_id }}"), &alert, "d").is_err());
        assert!(compile_check("{{ unclosed").is_err());
    }
}

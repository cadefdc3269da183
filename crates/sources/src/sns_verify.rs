//! Verifying SNS messages posted to the HTTP endpoint, per AWS's rules:
//!
//! 1. the body is an SNS message with a `Signature`, `SignatureVersion` 1 (SHA1withRSA) or
//!    2 (SHA256withRSA), and a `SigningCertURL`;
//! 2. the topic is in the allow-list;
//! 3. the certificate URL is `https://sns.<topic's region>.amazonaws.com[.cn]/….pem`;
//! 4. the message is fresh (`Timestamp` within `max_age`, not in the future) and its
//!    `MessageId` was not accepted before (replays);
//! 5. the signature over the canonical string (the fields `Message`, `MessageId`, `Subject` if
//!    present, `Timestamp`, `TopicArn`, `Type` for notifications; `Message`, `MessageId`,
//!    `SubscribeURL`, `Timestamp`, `Token`, `TopicArn`, `Type` for (un)subscribe
//!    confirmations; each as `Name\nvalue\n`) verifies with the key of the certificate, which
//!    must be within its validity period. Certificates are fetched over HTTPS (through a
//!    [`HttpsGet`], so tests can supply their own) and cached by URL.
//!
//! The crypto is RustCrypto's (`rsa`, `sha1`, `sha2`, `x509-cert`); nothing is hand-written.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use chrono::{DateTime, TimeDelta, Utc};
use rsa::RsaPublicKey;
use rsa::pkcs1v15::{Signature, VerifyingKey};
use rsa::pkcs8::DecodePublicKey;
use rsa::signature::Verifier;
use serde::Deserialize;
use x509_cert::Certificate;
use x509_cert::der::{DecodePem, Encode};

use crate::dedup::lock;

/// How long a fetched certificate is kept.
const CERT_CACHE_TTL: Duration = Duration::from_secs(24 * 3600);
/// How far in the future a `Timestamp` may be (clock skew).
const MAX_SKEW: TimeDelta = TimeDelta::minutes(5);
/// The largest certificate accepted.
const MAX_CERT_BYTES: usize = 64 * 1024;

/// An SNS message as posted to an HTTP(S) subscription.
#[derive(Debug, Clone, Deserialize)]
pub struct SnsMessage {
    /// `Notification`, `SubscriptionConfirmation` or `UnsubscribeConfirmation`.
    #[serde(rename = "Type")]
    pub kind: String,
    /// The message id.
    #[serde(rename = "MessageId")]
    pub message_id: String,
    /// The confirmation token (confirmations only).
    #[serde(rename = "Token", default)]
    pub token: Option<String>,
    /// The topic.
    #[serde(rename = "TopicArn")]
    pub topic_arn: String,
    /// The subject, when the publisher gave one.
    #[serde(rename = "Subject", default)]
    pub subject: Option<String>,
    /// The payload.
    #[serde(rename = "Message")]
    pub message: String,
    /// When SNS published it (RFC 3339).
    #[serde(rename = "Timestamp")]
    pub timestamp: String,
    /// `1` or `2`.
    #[serde(rename = "SignatureVersion", default)]
    pub signature_version: Option<String>,
    /// Base64 signature.
    #[serde(rename = "Signature", default)]
    pub signature: Option<String>,
    /// Where the signing certificate is.
    #[serde(rename = "SigningCertURL", default)]
    pub signing_cert_url: Option<String>,
    /// The URL to visit to confirm a subscription.
    #[serde(rename = "SubscribeURL", default)]
    pub subscribe_url: Option<String>,
}

/// Why a message was rejected (the endpoint answers 403).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// Not an SNS message (not JSON, or a required field is missing).
    #[error("not an SNS message: {0}")]
    Malformed(String),
    /// No `Signature`, `SignatureVersion` or `SigningCertURL`.
    #[error("message {message_id} is not signed")]
    Unsigned {
        /// The message id.
        message_id: String,
    },
    /// A `SignatureVersion` other than 1 or 2.
    #[error("message {message_id}: unsupported SignatureVersion {version:?}")]
    UnsupportedVersion {
        /// The message id.
        message_id: String,
        /// The version given.
        version: String,
    },
    /// The topic is not in the allow-list.
    #[error("message {message_id}: topic {topic} is not allowed")]
    TopicNotAllowed {
        /// The message id.
        message_id: String,
        /// The topic.
        topic: String,
    },
    /// The certificate URL breaks the https / `sns.<region>.amazonaws.com` rule.
    #[error("message {message_id}: signing certificate URL {url:?} rejected: {reason}")]
    CertUrl {
        /// The message id.
        message_id: String,
        /// The URL.
        url: String,
        /// Which rule it breaks.
        reason: String,
    },
    /// The timestamp is too old or in the future.
    #[error("message {message_id}: timestamp {timestamp} is outside the accepted window")]
    Stale {
        /// The message id.
        message_id: String,
        /// The timestamp given.
        timestamp: String,
    },
    /// This message id was accepted before.
    #[error("message {message_id} was already accepted (replay)")]
    Replayed {
        /// The message id.
        message_id: String,
    },
    /// The certificate could not be fetched or parsed, or is expired.
    #[error("message {message_id}: signing certificate {url}: {reason}")]
    Certificate {
        /// The message id.
        message_id: String,
        /// The URL.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// The signature does not verify.
    #[error("message {message_id}: signature does not verify")]
    BadSignature {
        /// The message id.
        message_id: String,
    },
}

/// A future returned by [`HttpsGet::get`].
pub type GetFuture<'a> = Pin<Box<dyn Future<Output = Result<Vec<u8>, String>> + Send + 'a>>;

/// Fetches a URL's body: signing certificates and subscription-confirmation URLs.
pub trait HttpsGet: Send + Sync + 'static {
    /// GETs `url` (already checked against the SNS host rules).
    fn get<'a>(&'a self, url: &'a str) -> GetFuture<'a>;
}

/// The production fetcher: HTTPS only (rustls, the platform's roots), 10 s timeout, size cap.
pub struct ReqwestGet {
    client: reqwest::Client,
}

impl ReqwestGet {
    /// A fetcher with its own client.
    pub fn new() -> Result<ReqwestGet, String> {
        let client = reqwest::Client::builder()
            .https_only(true)
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(ReqwestGet { client })
    }
}

impl HttpsGet for ReqwestGet {
    fn get<'a>(&'a self, url: &'a str) -> GetFuture<'a> {
        Box::pin(async move {
            let resp = self
                .client
                .get(url)
                .send()
                .await
                .map_err(|e| e.to_string())?;
            if !resp.status().is_success() {
                return Err(format!("HTTP {}", resp.status()));
            }
            let body = resp.bytes().await.map_err(|e| e.to_string())?;
            if body.len() > MAX_CERT_BYTES {
                return Err(format!("response of {} bytes is too large", body.len()));
            }
            Ok(body.to_vec())
        })
    }
}

/// Testing (`trusted_cert_pem`): answers every certificate URL with one fixed PEM, and
/// records the other URLs it is asked for (subscription confirmations).
pub struct StaticCert {
    pem: Vec<u8>,
    /// URLs fetched that were not certificates.
    pub visited: Mutex<Vec<String>>,
}

impl StaticCert {
    /// A fetcher answering with `pem`.
    pub fn new(pem: Vec<u8>) -> StaticCert {
        StaticCert {
            pem,
            visited: Mutex::new(Vec::new()),
        }
    }
}

impl HttpsGet for StaticCert {
    fn get<'a>(&'a self, url: &'a str) -> GetFuture<'a> {
        Box::pin(async move {
            if url.ends_with(".pem") {
                Ok(self.pem.clone())
            } else {
                lock(&self.visited).push(url.to_owned());
                Ok(b"<ConfirmSubscriptionResponse/>".to_vec())
            }
        })
    }
}

/// The region of an SNS topic ARN (`arn:aws:sns:REGION:ACCOUNT:NAME`), `None` if it is not one.
pub fn topic_region(arn: &str) -> Option<&str> {
    let parts: Vec<&str> = arn.split(':').collect();
    match parts.as_slice() {
        ["arn", partition, "sns", region, account, name]
            if partition.starts_with("aws")
                && !region.is_empty()
                && account.len() == 12
                && !name.is_empty() =>
        {
            Some(region)
        }
        _ => None,
    }
}

/// Checks a URL SNS gave us (certificate or SubscribeURL): https, host
/// `sns.<region>.amazonaws.com` or `sns.<region>.amazonaws.com.cn`, default port.
pub fn check_sns_url(url: &str, region: &str) -> Result<url::Url, String> {
    let parsed = url::Url::parse(url).map_err(|e| format!("not a URL: {e}"))?;
    if parsed.scheme() != "https" {
        return Err("not https".into());
    }
    let host = parsed.host_str().unwrap_or("");
    let ok = host == format!("sns.{region}.amazonaws.com")
        || host == format!("sns.{region}.amazonaws.com.cn");
    if !ok {
        return Err(format!("host {host:?} is not sns.{region}.amazonaws.com"));
    }
    if parsed.port().is_some() || !parsed.username().is_empty() || parsed.password().is_some() {
        return Err("unexpected port or credentials".into());
    }
    Ok(parsed)
}

/// The string SNS signs, per the message type.
pub fn canonical_string(m: &SnsMessage) -> Result<String, String> {
    let mut out = String::new();
    let mut push = |name: &str, value: &str| {
        out.push_str(name);
        out.push('\n');
        out.push_str(value);
        out.push('\n');
    };
    match m.kind.as_str() {
        "Notification" => {
            push("Message", &m.message);
            push("MessageId", &m.message_id);
            if let Some(subject) = &m.subject {
                push("Subject", subject);
            }
            push("Timestamp", &m.timestamp);
            push("TopicArn", &m.topic_arn);
            push("Type", &m.kind);
        }
        "SubscriptionConfirmation" | "UnsubscribeConfirmation" => {
            let url = m.subscribe_url.as_deref().ok_or("no SubscribeURL")?;
            let token = m.token.as_deref().ok_or("no Token")?;
            push("Message", &m.message);
            push("MessageId", &m.message_id);
            push("SubscribeURL", url);
            push("Timestamp", &m.timestamp);
            push("Token", token);
            push("TopicArn", &m.topic_arn);
            push("Type", &m.kind);
        }
        other => return Err(format!("unknown Type {other:?}")),
    }
    Ok(out)
}

/// Verifies SNS messages; one per endpoint, shared by its requests.
pub struct SnsVerifier {
    allowed: HashSet<String>,
    max_age: TimeDelta,
    fetcher: Arc<dyn HttpsGet>,
    keys: Mutex<HashMap<String, (Arc<RsaPublicKey>, Instant)>>,
    seen: Mutex<HashMap<String, DateTime<Utc>>>,
}

impl SnsVerifier {
    /// A verifier accepting `allowed` topics, messages up to `max_age` old, fetching
    /// certificates with `fetcher`.
    pub fn new(allowed: &[String], max_age: Duration, fetcher: Arc<dyn HttpsGet>) -> SnsVerifier {
        SnsVerifier {
            allowed: allowed.iter().cloned().collect(),
            max_age: TimeDelta::from_std(max_age).unwrap_or(TimeDelta::hours(1)),
            fetcher,
            keys: Mutex::new(HashMap::new()),
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// The fetcher (also used to visit SubscribeURLs).
    pub fn fetcher(&self) -> &Arc<dyn HttpsGet> {
        &self.fetcher
    }

    /// Verifies a posted body; on success the message id is remembered (see [`Self::forget`]).
    pub async fn verify(&self, body: &[u8]) -> Result<SnsMessage, VerifyError> {
        self.verify_at(body, Utc::now()).await
    }

    /// [`Self::verify`] with an explicit "now".
    pub async fn verify_at(
        &self,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<SnsMessage, VerifyError> {
        let m: SnsMessage =
            serde_json::from_slice(body).map_err(|e| VerifyError::Malformed(e.to_string()))?;
        let id = || m.message_id.clone();
        let (Some(version), Some(signature), Some(cert_url)) =
            (&m.signature_version, &m.signature, &m.signing_cert_url)
        else {
            return Err(VerifyError::Unsigned { message_id: id() });
        };
        if signature.is_empty() {
            return Err(VerifyError::Unsigned { message_id: id() });
        }
        if version != "1" && version != "2" {
            return Err(VerifyError::UnsupportedVersion {
                message_id: id(),
                version: version.clone(),
            });
        }
        if !self.allowed.contains(&m.topic_arn) {
            return Err(VerifyError::TopicNotAllowed {
                message_id: id(),
                topic: m.topic_arn.clone(),
            });
        }
        let region = topic_region(&m.topic_arn).ok_or_else(|| VerifyError::TopicNotAllowed {
            message_id: id(),
            topic: m.topic_arn.clone(),
        })?;
        let url = check_sns_url(cert_url, region).map_err(|reason| VerifyError::CertUrl {
            message_id: id(),
            url: cert_url.clone(),
            reason,
        })?;
        if !url.path().ends_with(".pem") {
            return Err(VerifyError::CertUrl {
                message_id: id(),
                url: cert_url.clone(),
                reason: "path does not end in .pem".into(),
            });
        }
        let stale = || VerifyError::Stale {
            message_id: id(),
            timestamp: m.timestamp.clone(),
        };
        let ts = DateTime::parse_from_rfc3339(&m.timestamp)
            .map_err(|_| stale())?
            .with_timezone(&Utc);
        if now - ts > self.max_age || ts - now > MAX_SKEW {
            return Err(stale());
        }
        let canonical = canonical_string(&m).map_err(VerifyError::Malformed)?;
        let sig_bytes = base64::engine::general_purpose::STANDARD
            .decode(signature.trim())
            .map_err(|_| VerifyError::BadSignature { message_id: id() })?;
        let key = self.key_for(cert_url, &m.message_id, now).await?;
        let sig = Signature::try_from(sig_bytes.as_slice())
            .map_err(|_| VerifyError::BadSignature { message_id: id() })?;
        let ok = if version == "1" {
            VerifyingKey::<sha1::Sha1>::new((*key).clone()).verify(canonical.as_bytes(), &sig)
        } else {
            VerifyingKey::<sha2::Sha256>::new((*key).clone()).verify(canonical.as_bytes(), &sig)
        };
        ok.map_err(|_| VerifyError::BadSignature { message_id: id() })?;
        let mut seen = lock(&self.seen);
        let horizon = now - self.max_age - MAX_SKEW;
        seen.retain(|_, t| *t >= horizon);
        if seen.contains_key(&m.message_id) {
            return Err(VerifyError::Replayed { message_id: id() });
        }
        seen.insert(m.message_id.clone(), ts);
        drop(seen);
        Ok(m)
    }

    /// Forgets an accepted message id, so SNS's retry of a message whose processing failed
    /// is not taken for a replay.
    pub fn forget(&self, message_id: &str) {
        lock(&self.seen).remove(message_id);
    }

    async fn key_for(
        &self,
        url: &str,
        message_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Arc<RsaPublicKey>, VerifyError> {
        if let Some((key, at)) = lock(&self.keys).get(url)
            && at.elapsed() < CERT_CACHE_TTL
        {
            return Ok(key.clone());
        }
        let err = |reason: String| VerifyError::Certificate {
            message_id: message_id.to_owned(),
            url: url.to_owned(),
            reason,
        };
        let pem = self.fetcher.get(url).await.map_err(err)?;
        let key = Arc::new(public_key_from_pem(&pem, now).map_err(err)?);
        lock(&self.keys).insert(url.to_owned(), (key.clone(), Instant::now()));
        Ok(key)
    }
}

/// The RSA key of a PEM certificate that is valid at `now`.
pub fn public_key_from_pem(pem: &[u8], now: DateTime<Utc>) -> Result<RsaPublicKey, String> {
    let cert = Certificate::from_pem(pem).map_err(|e| format!("not a PEM certificate: {e}"))?;
    let validity = &cert.tbs_certificate.validity;
    let now_unix = Duration::from_secs(now.timestamp().max(0) as u64);
    if now_unix < validity.not_before.to_unix_duration()
        || now_unix > validity.not_after.to_unix_duration()
    {
        return Err("certificate is not valid now".into());
    }
    let spki = cert
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .map_err(|e| e.to_string())?;
    RsaPublicKey::from_public_key_der(&spki).map_err(|e| format!("not an RSA key: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(kind: &str) -> SnsMessage {
        SnsMessage {
            kind: kind.into(),
            message_id: "m-1".into(),
            token: Some("tok".into()),
            topic_arn: "arn:aws:sns:us-east-1:111122223333:t".into(),
            subject: None,
            message: "hello\nworld".into(),
            timestamp: "2026-01-01T00:00:00.000Z".into(),
            signature_version: Some("2".into()),
            signature: Some("x".into()),
            signing_cert_url: None,
            subscribe_url: Some(
                "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription".into(),
            ),
        }
    }

    #[test]
    fn canonical_strings_follow_the_documented_field_order() {
        let mut n = msg("Notification");
        assert_eq!(
            canonical_string(&n).unwrap(),
            "Message\nhello\nworld\nMessageId\nm-1\nTimestamp\n2026-01-01T00:00:00.000Z\nTopicArn\narn:aws:sns:us-east-1:111122223333:t\nType\nNotification\n"
        );
        n.subject = Some("s".into());
        assert!(
            canonical_string(&n)
                .unwrap()
                .contains("MessageId\nm-1\nSubject\ns\nTimestamp\n")
        );
        let c = msg("SubscriptionConfirmation");
        assert_eq!(
            canonical_string(&c).unwrap(),
            "Message\nhello\nworld\nMessageId\nm-1\nSubscribeURL\nhttps://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription\nTimestamp\n2026-01-01T00:00:00.000Z\nToken\ntok\nTopicArn\narn:aws:sns:us-east-1:111122223333:t\nType\nSubscriptionConfirmation\n"
        );
        assert!(canonical_string(&msg("Other")).is_err());
    }

    #[test]
    fn certificate_urls_must_be_sns_https() {
        let good = "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-abc.pem";
        assert!(check_sns_url(good, "eu-west-1").is_ok());
        assert!(
            check_sns_url(
                "https://sns.cn-north-1.amazonaws.com.cn/x.pem",
                "cn-north-1"
            )
            .is_ok()
        );
        for bad in [
            "http://sns.eu-west-1.amazonaws.com/x.pem",
            "https://sns.us-east-1.amazonaws.com/x.pem",
            "https://sns.eu-west-1.amazonaws.com.evil.com/x.pem",
            "https://evil.com/sns.eu-west-1.amazonaws.com/x.pem",
            "https://sns.eu-west-1.amazonaws.com:8443/x.pem",
            "https://user@sns.eu-west-1.amazonaws.com/x.pem",
            "not a url",
        ] {
            assert!(check_sns_url(bad, "eu-west-1").is_err(), "{bad}");
        }
    }

    #[test]
    fn topic_arns() {
        assert_eq!(
            topic_region("arn:aws:sns:eu-west-1:111122223333:t"),
            Some("eu-west-1")
        );
        assert_eq!(
            topic_region("arn:aws-cn:sns:cn-north-1:111122223333:t"),
            Some("cn-north-1")
        );
        assert_eq!(topic_region("arn:aws:sqs:eu-west-1:111122223333:t"), None);
        assert_eq!(topic_region("t"), None);
    }
}

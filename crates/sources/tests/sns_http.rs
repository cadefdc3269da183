//! The SNS endpoint over real HTTP: messages signed here with a generated key and a
//! self-signed certificate (the verifier trusts it through the fetcher, as `trusted_cert_pem`
//! does); forged, unsigned, wrong-host, wrong-topic, stale and replayed messages get 403.

mod common;

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use chrono::{TimeDelta, Utc};
use common::*;
use rsa::pkcs1v15::SigningKey;
use rsa::pkcs8::DecodePrivateKey;
use rsa::signature::{SignatureEncoding, Signer};
use serde_json::{Value, json};
use trailwatch_sources::CancellationToken;
use trailwatch_sources::config::SnsHttpConfig;
use trailwatch_sources::metrics::Metrics;
use trailwatch_sources::sns_http::{SnsEndpoint, bind, serve};
use trailwatch_sources::sns_verify::{SnsMessage, SnsVerifier, StaticCert, canonical_string};

const TOPIC: &str = "arn:aws:sns:us-east-1:111122223333:trailwatch";
const CERT_URL: &str = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-test.pem";

struct Signer2 {
    key: rsa::RsaPrivateKey,
    cert_pem: String,
}

fn make_signer() -> Signer2 {
    let key = rcgen::KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048)
        .unwrap();
    let params = rcgen::CertificateParams::new(vec!["sns.amazonaws.com".to_owned()]).unwrap();
    let cert = params.self_signed(&key).unwrap();
    Signer2 {
        key: rsa::RsaPrivateKey::from_pkcs8_der(&key.serialize_der()).unwrap(),
        cert_pem: cert.pem(),
    }
}

impl Signer2 {
    /// Signs `fields` in place (SignatureVersion from the object) and returns the body.
    fn sign(&self, mut v: Value) -> String {
        let m: SnsMessage = serde_json::from_value(v.clone()).unwrap();
        let canonical = canonical_string(&m).unwrap();
        let sig = if m.signature_version.as_deref() == Some("1") {
            SigningKey::<sha1::Sha1>::new(self.key.clone())
                .sign(canonical.as_bytes())
                .to_vec()
        } else {
            SigningKey::<sha2::Sha256>::new(self.key.clone())
                .sign(canonical.as_bytes())
                .to_vec()
        };
        v["Signature"] = json!(base64::engine::general_purpose::STANDARD.encode(sig));
        v.to_string()
    }
}

fn envelope(event_id: &str) -> String {
    json!({
        "version": "0", "id": format!("00000000-0000-0000-0000-{:0>12}", event_id.len()),
        "detail-type": "AWS API Call via CloudTrail", "source": "aws.iam",
        "account": "111122223333", "time": "2026-01-01T00:00:00Z", "region": "us-east-1",
        "resources": [],
        "detail": {"eventVersion": "1.08", "eventTime": "2026-01-01T00:00:00Z",
            "eventSource": "iam.amazonaws.com", "eventName": "CreateUser", "awsRegion": "us-east-1",
            "eventID": event_id, "eventType": "AwsApiCall", "recipientAccountId": "111122223333"}
    })
    .to_string()
}

fn notification(id: &str, event_id: &str, version: &str) -> Value {
    json!({
        "Type": "Notification", "MessageId": id, "TopicArn": TOPIC,
        "Subject": "CloudTrail event", "Message": envelope(event_id),
        "Timestamp": Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "SignatureVersion": version, "Signature": "", "SigningCertURL": CERT_URL,
        "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe"
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verified_messages_are_accepted_and_every_forgery_gets_403() {
    let signer = make_signer();
    let dir = tempfile::tempdir().unwrap();
    let pipeline = Arc::new(Recording::default());
    let d = deliverer(&dir.path().join("s.sqlite"), pipeline.clone());
    let metrics = Metrics::new();
    let mut config = SnsHttpConfig::new(vec![TOPIC.to_owned()]);
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.max_age = Duration::from_secs(600);
    let fetcher = Arc::new(StaticCert::new(signer.cert_pem.clone().into_bytes()));
    let verifier = SnsVerifier::new(&config.allowed_topics, config.max_age, fetcher.clone());
    let endpoint =
        SnsEndpoint::with_verifier(config.clone(), verifier, d, None, metrics.source("sns"));
    let listener = bind(&config).unwrap();
    let addr = listener.local_addr().unwrap();
    assert!(addr.ip().is_loopback());
    let cancel = CancellationToken::new();
    let app = endpoint
        .router()
        .merge(trailwatch_sources::metrics::router(metrics.clone()));
    let server = tokio::spawn({
        let cancel = cancel.clone();
        let config = config.clone();
        async move { serve(listener, app, &config, cancel).await }
    });
    let url = format!("http://{addr}/sns");
    let http = reqwest::Client::new();
    let post = async |body: String| -> u16 {
        http.post(&url)
            .header("content-type", "text/plain")
            .body(body)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    };

    // Valid, both signature versions.
    assert_eq!(
        post(signer.sign(notification("m-1", "ev-1", "1"))).await,
        200
    );
    assert_eq!(
        post(signer.sign(notification("m-2", "ev-2", "2"))).await,
        200
    );
    assert!(pipeline.has_all(&["ev-1".to_owned(), "ev-2".to_owned()]));

    // Replayed: the same signed message again.
    let again = signer.sign(notification("m-3", "ev-3", "2"));
    assert_eq!(post(again.clone()).await, 200);
    assert_eq!(post(again).await, 403, "replay");

    // Forged: the message changed after signing.
    let signed: Value =
        serde_json::from_str(&signer.sign(notification("m-4", "ev-4", "2"))).unwrap();
    let mut forged = signed.clone();
    forged["Message"] = json!(envelope("ev-forged"));
    assert_eq!(post(forged.to_string()).await, 403, "forged");
    // Signed by another key.
    let other = make_signer();
    assert_eq!(
        post(other.sign(notification("m-5", "ev-5", "2"))).await,
        403,
        "other key"
    );
    // Unsigned.
    let mut unsigned = notification("m-6", "ev-6", "2");
    unsigned.as_object_mut().unwrap().remove("Signature");
    assert_eq!(post(unsigned.to_string()).await, 403, "unsigned");
    // Wrong certificate host (still signed with the trusted key).
    let mut wrong_host = notification("m-7", "ev-7", "2");
    wrong_host["SigningCertURL"] = json!("https://sns.us-east-1.amazonaws.com.evil.example/x.pem");
    assert_eq!(post(signer.sign(wrong_host)).await, 403, "wrong cert host");
    let mut plain_http = notification("m-8", "ev-8", "2");
    plain_http["SigningCertURL"] = json!("http://sns.us-east-1.amazonaws.com/x.pem");
    assert_eq!(post(signer.sign(plain_http)).await, 403, "http cert URL");
    // Wrong topic.
    let mut wrong_topic = notification("m-9", "ev-9", "2");
    wrong_topic["TopicArn"] = json!("arn:aws:sns:us-east-1:111122223333:other");
    assert_eq!(post(signer.sign(wrong_topic)).await, 403, "wrong topic");
    // Too old.
    let mut stale = notification("m-10", "ev-10", "2");
    stale["Timestamp"] = json!(
        (Utc::now() - TimeDelta::hours(2)).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    );
    assert_eq!(post(signer.sign(stale)).await, 403, "stale");
    // Unknown signature version.
    let mut v3 = notification("m-11", "ev-11", "3");
    v3["Signature"] = json!("AAAA");
    assert_eq!(post(v3.to_string()).await, 403, "version 3");
    // Not JSON at all.
    assert_eq!(post("hello".into()).await, 403);

    // Subscription confirmation: allowed topic confirmed (its SubscribeURL visited) ...
    let confirm = json!({
        "Type": "SubscriptionConfirmation", "MessageId": "c-1", "Token": "tok", "TopicArn": TOPIC,
        "Message": "You have chosen to subscribe...",
        "SubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&Token=tok",
        "Timestamp": Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "SignatureVersion": "2", "Signature": "", "SigningCertURL": CERT_URL
    });
    assert_eq!(post(signer.sign(confirm.clone())).await, 200);
    assert_eq!(
        fetcher.visited.lock().unwrap().as_slice(),
        ["https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&Token=tok"]
    );
    // ... another topic is not.
    let mut other_topic = confirm.clone();
    other_topic["TopicArn"] = json!("arn:aws:sns:us-east-1:111122223333:other");
    other_topic["MessageId"] = json!("c-2");
    assert_eq!(post(signer.sign(other_topic)).await, 403);
    assert_eq!(fetcher.visited.lock().unwrap().len(), 1);

    assert_eq!(
        pipeline.count(),
        3,
        "only the three valid notifications reached the pipeline"
    );
    let m = metrics.source("sns");
    assert_eq!(m.requests_rejected.get(), 11);
    let text = http
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains("trailwatch_source_requests_rejected_total{source=\"sns\"} 11"),
        "{text}"
    );
    cancel.cancel();
    server.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_endpoint_with_trusted_cert_from_config() {
    let signer = make_signer();
    let dir = tempfile::tempdir().unwrap();
    // The signing certificate, through config (the testing override).
    let trusted = dir.path().join("signing.pem");
    std::fs::write(&trusted, &signer.cert_pem).unwrap();
    // A TLS certificate for 127.0.0.1.
    let tls_key = rcgen::KeyPair::generate().unwrap();
    let tls_cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .self_signed(&tls_key)
        .unwrap();
    std::fs::write(dir.path().join("tls.pem"), tls_cert.pem()).unwrap();
    std::fs::write(dir.path().join("tls.key"), tls_key.serialize_pem()).unwrap();
    let mut config = SnsHttpConfig::new(vec![TOPIC.to_owned()]);
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.trusted_cert_pem = Some(trusted);
    config.tls_cert = Some(dir.path().join("tls.pem"));
    config.tls_key = Some(dir.path().join("tls.key"));
    let pipeline = Arc::new(Recording::default());
    let d = deliverer(&dir.path().join("s.sqlite"), pipeline.clone());
    let metrics = Metrics::new();
    let endpoint = SnsEndpoint::new(config.clone(), d, None, metrics.source("sns")).unwrap();
    let listener = bind(&config).unwrap();
    let port = listener.local_addr().unwrap().port();
    let cancel = CancellationToken::new();
    let server = tokio::spawn({
        let (cancel, config, app) = (cancel.clone(), config.clone(), endpoint.router());
        async move { serve(listener, app, &config, cancel).await }
    });
    let ca = reqwest::Certificate::from_pem(tls_cert.pem().as_bytes()).unwrap();
    let http = reqwest::Client::builder()
        .add_root_certificate(ca)
        .resolve("localhost", ([127, 0, 0, 1], port).into())
        .build()
        .unwrap();
    let url = format!("https://localhost:{port}/sns");
    let ok = http
        .post(&url)
        .body(signer.sign(notification("t-1", "tls-ev-1", "2")))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status().as_u16(), 200);
    let bad = http
        .post(&url)
        .body(make_signer().sign(notification("t-2", "tls-ev-2", "2")))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status().as_u16(), 403);
    assert!(pipeline.has_all(&["tls-ev-1".to_owned()]));
    assert_eq!(pipeline.count(), 1);
    cancel.cancel();
    server.await.unwrap().unwrap();
}

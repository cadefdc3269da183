//! The HTTP(S) endpoint SNS subscriptions post to.
//!
//! Every request is verified first ([`crate::sns_verify`]); anything that fails gets 403 and a
//! warning naming the reason. Then:
//! - `SubscriptionConfirmation` for an allowed topic: the `SubscribeURL` (checked against the
//!   SNS host rules) is visited, which confirms the subscription;
//! - `Notification`: its payload (an S3 notification, an EventBridge event, CloudTrail
//!   records) is decoded; events and announced log files are delivered. 200 only once
//!   everything reached the pipeline, 500 otherwise so SNS retries;
//! - `UnsubscribeConfirmation`: logged.
//!
//! Binds 127.0.0.1 unless configured otherwise; TLS from PEM files (rustls), or plain HTTP
//! behind a TLS-terminating reverse proxy.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use tokio_util::sync::CancellationToken;
use trailwatch_event::Limits;

use crate::config::SnsHttpConfig;
use crate::dedup::Deliverer;
use crate::error::SourceError;
use crate::metrics::SourceMetrics;
use crate::sns_verify::{ReqwestGet, SnsVerifier, StaticCert, check_sns_url, topic_region};
use crate::sqs_eventbridge::{deliver_events, plan_counted};
use crate::sqs_s3::{ObjectReader, record_delivery};

/// The endpoint's shared state.
pub struct SnsEndpoint {
    config: SnsHttpConfig,
    verifier: SnsVerifier,
    deliverer: Arc<Deliverer>,
    reader: Option<ObjectReader>,
    metrics: Arc<SourceMetrics>,
    limits: Limits,
}

impl SnsEndpoint {
    /// An endpoint for `config`. Certificates are fetched over HTTPS, or, when
    /// `trusted_cert_pem` is set (tests), read from that file. `reader` reads the log files
    /// that notifications announce (without one, such notifications fail with 500).
    pub fn new(
        config: SnsHttpConfig,
        deliverer: Arc<Deliverer>,
        reader: Option<ObjectReader>,
        metrics: Arc<SourceMetrics>,
    ) -> Result<Arc<SnsEndpoint>, SourceError> {
        let fetcher: Arc<dyn crate::sns_verify::HttpsGet> = match &config.trusted_cert_pem {
            Some(path) => {
                let pem = std::fs::read(path).map_err(|source| SourceError::Io {
                    what: format!("reading trusted_cert_pem {}", path.display()),
                    source,
                })?;
                Arc::new(StaticCert::new(pem))
            }
            None => Arc::new(ReqwestGet::new().map_err(SourceError::Setup)?),
        };
        Ok(Self::with_verifier(
            config.clone(),
            SnsVerifier::new(&config.allowed_topics, config.max_age, fetcher),
            deliverer,
            reader,
            metrics,
        ))
    }

    /// An endpoint with a verifier of the caller's making (tests inject their fetcher).
    pub fn with_verifier(
        config: SnsHttpConfig,
        verifier: SnsVerifier,
        deliverer: Arc<Deliverer>,
        reader: Option<ObjectReader>,
        metrics: Arc<SourceMetrics>,
    ) -> Arc<SnsEndpoint> {
        let limits = reader
            .as_ref()
            .map(|r| r.limits.clone())
            .unwrap_or_default();
        Arc::new(SnsEndpoint {
            config,
            verifier,
            deliverer,
            reader,
            metrics,
            limits,
        })
    }

    /// The router: `POST {path}`.
    pub fn router(self: &Arc<Self>) -> Router {
        Router::new()
            .route(&self.config.path, post(receive))
            .with_state(self.clone())
    }

    async fn handle(&self, body: Bytes) -> (StatusCode, &'static str) {
        self.metrics.messages_received.inc();
        let msg = match self.verifier.verify(&body).await {
            Ok(m) => m,
            Err(e) => {
                self.metrics.requests_rejected.inc();
                tracing::warn!(error = %e, "SNS request rejected (403)");
                return (StatusCode::FORBIDDEN, "forbidden\n");
            }
        };
        let id = msg.message_id.clone();
        match msg.kind.as_str() {
            "SubscriptionConfirmation" => {
                let region = topic_region(&msg.topic_arn).unwrap_or("");
                let url = msg.subscribe_url.as_deref().unwrap_or("");
                if let Err(reason) = check_sns_url(url, region) {
                    self.metrics.requests_rejected.inc();
                    tracing::warn!(message_id = %id, topic = %msg.topic_arn, reason, "SubscribeURL rejected (403)");
                    return (StatusCode::FORBIDDEN, "forbidden\n");
                }
                match self.verifier.fetcher().get(url).await {
                    Ok(_) => {
                        tracing::info!(topic = %msg.topic_arn, "SNS subscription confirmed");
                        self.metrics.messages_skipped.inc();
                        (StatusCode::OK, "confirmed\n")
                    }
                    Err(e) => {
                        self.verifier.forget(&id);
                        tracing::warn!(topic = %msg.topic_arn, error = %e, "could not confirm the SNS subscription");
                        (StatusCode::BAD_GATEWAY, "confirmation failed\n")
                    }
                }
            }
            "UnsubscribeConfirmation" => {
                tracing::warn!(topic = %msg.topic_arn, "SNS says this endpoint was unsubscribed");
                self.metrics.messages_skipped.inc();
                (StatusCode::OK, "ok\n")
            }
            _ => match self.notification(body, &id, &msg.topic_arn).await {
                Ok(()) => (StatusCode::OK, "ok\n"),
                Err(e) => {
                    self.verifier.forget(&id);
                    self.metrics.messages_failed.inc();
                    tracing::warn!(message_id = %id, topic = %msg.topic_arn, error = %e, "SNS notification failed (500); SNS will retry");
                    (StatusCode::INTERNAL_SERVER_ERROR, "failed\n")
                }
            },
        }
    }

    async fn notification(&self, body: Bytes, id: &str, topic: &str) -> Result<(), SourceError> {
        let origin = format!("sns:{topic}");
        let m = &self.metrics;
        let mut plan = plan_counted(
            body,
            &origin,
            id,
            &self.limits,
            m,
            "decoding an SNS message",
        )
        .await?;
        if plan.only_notices() {
            tracing::info!(message_id = %id, notices = ?plan.notices, "SNS message carries nothing to process");
            m.messages_skipped.inc();
            return Ok(());
        }
        deliver_events(
            std::mem::take(&mut plan.events),
            &origin,
            Some(id),
            &self.deliverer,
            m,
        )
        .await?;
        for obj in &plan.objects {
            let reader = self.reader.as_ref().ok_or_else(|| {
                SourceError::Setup(format!(
                    "no S3 client to read {} announced over SNS",
                    obj.url()
                ))
            })?;
            reader
                .read(&obj.bucket, &obj.key, Some(id), &self.deliverer, m)
                .await?;
            record_delivery(&self.deliverer, &obj.key, chrono::Utc::now()).await?;
        }
        if let Some(reason) = plan.failure {
            return Err(SourceError::Undecodable {
                origin,
                message_id: Some(id.to_owned()),
                reason,
            });
        }
        m.messages_deleted.inc();
        Ok(())
    }
}

async fn receive(State(ep): State<Arc<SnsEndpoint>>, body: Bytes) -> (StatusCode, &'static str) {
    ep.handle(body).await
}

/// Binds the configured address (127.0.0.1:8088 by default).
pub fn bind(config: &SnsHttpConfig) -> Result<std::net::TcpListener, SourceError> {
    let listener =
        std::net::TcpListener::bind(config.listen).map_err(|source| SourceError::Io {
            what: format!("binding {}", config.listen),
            source,
        })?;
    listener
        .set_nonblocking(true)
        .map_err(|source| SourceError::Io {
            what: "setting the listener non-blocking".into(),
            source,
        })?;
    Ok(listener)
}

/// Serves `app` on `listener` until `cancel` fires, then drains in-flight requests. TLS when
/// `config` names a certificate and key.
pub async fn serve(
    listener: std::net::TcpListener,
    app: Router,
    config: &SnsHttpConfig,
    cancel: CancellationToken,
) -> Result<(), SourceError> {
    let addr: Option<SocketAddr> = listener.local_addr().ok();
    match (&config.tls_cert, &config.tls_key) {
        (Some(cert), Some(key)) => {
            let tls = rustls_config(cert, key)?;
            let handle = axum_server::Handle::new();
            let h = handle.clone();
            tokio::spawn(async move {
                cancel.cancelled().await;
                h.graceful_shutdown(Some(std::time::Duration::from_secs(30)));
            });
            tracing::info!(?addr, "SNS endpoint listening (TLS)");
            axum_server::from_tcp_rustls(
                listener,
                axum_server::tls_rustls::RustlsConfig::from_config(tls),
            )
            .map_err(|source| SourceError::Io {
                what: "serving TLS".into(),
                source,
            })?
            .handle(handle)
            .serve(app.into_make_service())
            .await
            .map_err(|source| SourceError::Io {
                what: "serving TLS".into(),
                source,
            })
        }
        _ => {
            tracing::info!(
                ?addr,
                "SNS endpoint listening (plain HTTP; terminate TLS in front)"
            );
            let listener =
                tokio::net::TcpListener::from_std(listener).map_err(|source| SourceError::Io {
                    what: "registering the listener".into(),
                    source,
                })?;
            axum::serve(listener, app)
                .with_graceful_shutdown(cancel.cancelled_owned())
                .await
                .map_err(|source| SourceError::Io {
                    what: "serving HTTP".into(),
                    source,
                })
        }
    }
}

fn rustls_config(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Result<Arc<rustls::ServerConfig>, SourceError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let setup = |what: String| SourceError::Setup(what);
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| setup(format!("reading tls_cert {}: {e}", cert.display())))?
        .collect::<Result<_, _>>()
        .map_err(|e| setup(format!("reading tls_cert {}: {e}", cert.display())))?;
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| setup(format!("reading tls_key {}: {e}", key.display())))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| setup(format!("TLS versions: {e}")))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| setup(format!("TLS certificate and key: {e}")))?;
    Ok(Arc::new(config))
}

//! Sending one delivery to one destination: the only module that talks to the network.

use std::io::Write as _;
use std::time::{Duration, SystemTime};

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use trailwatch_alert::Alert;

use crate::backoff::parse_retry_after;
use crate::config::{
    DestinationConfig, DestinationKind, EmailConfig, SlackAuth, SnsConfig, StdoutFormat, TlsMode,
    WebhookUrl,
};
use crate::error::DeliveryError;
use crate::payload;
use crate::secret::SecretSource;

/// A configured destination, ready to send.
pub struct Sender {
    config: DestinationConfig,
    http: reqwest::Client,
    sns: tokio::sync::OnceCell<aws_sdk_sns::Client>,
    file_lock: std::sync::Mutex<()>,
}

impl std::fmt::Debug for Sender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sender")
            .field("name", &self.config.name)
            .field("type", &self.config.kind.type_name())
            .finish()
    }
}

/// The longest response body kept in an error message.
const MAX_ERROR_BODY: usize = 300;

impl Sender {
    /// Prepares a destination. `http` is shared by all destinations (connection pooling).
    pub fn new(config: DestinationConfig, http: reqwest::Client) -> Sender {
        Sender {
            config,
            http,
            sns: tokio::sync::OnceCell::new(),
            file_lock: std::sync::Mutex::new(()),
        }
    }

    /// The destination's config.
    pub fn config(&self) -> &DestinationConfig {
        &self.config
    }

    fn name(&self) -> &str {
        &self.config.name
    }

    fn secret(&self, source: &SecretSource) -> Result<crate::Secret, DeliveryError> {
        source.resolve().map_err(|source| DeliveryError::Secret {
            destination: self.name().to_owned(),
            source,
        })
    }

    /// Sends `alert` once. `Ok` means the destination accepted it (2xx, or SMTP 250).
    pub async fn send(&self, alert: &Alert, delivery_id: &str) -> Result<(), DeliveryError> {
        match &self.config.kind {
            DestinationKind::Slack(slack) => {
                let (url, auth, channel) = match &slack.auth {
                    SlackAuth::Webhook(source) => (self.secret(source)?, None, None),
                    SlackAuth::BotToken { token, api_url } => (
                        crate::Secret::new(format!("{api_url}/chat.postMessage")),
                        Some(self.secret(token)?),
                        slack.channel_for(alert),
                    ),
                };
                let body = payload::slack::message(alert, channel);
                let mut headers = Vec::new();
                if let Some(token) = &auth {
                    headers.push((
                        "authorization".to_owned(),
                        format!("Bearer {}", token.expose()),
                    ));
                }
                let (_, text) = self.post(url.expose(), json_bytes(&body), &headers).await?;
                if auth.is_some() {
                    // chat.postMessage answers 200 with {"ok": false, "error": ...} on errors.
                    let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
                    if v["ok"] != serde_json::Value::Bool(true) {
                        let reason = v["error"]
                            .as_str()
                            .unwrap_or("no \"ok\": true in the answer");
                        return Err(DeliveryError::Refused {
                            destination: self.name().to_owned(),
                            reason: reason.to_owned(),
                            retryable: matches!(
                                reason,
                                "ratelimited"
                                    | "internal_error"
                                    | "fatal_error"
                                    | "service_unavailable"
                                    | "request_timeout"
                            ),
                        });
                    }
                }
                Ok(())
            }
            DestinationKind::PagerDuty(pd) => {
                let key = self.secret(&pd.routing_key)?;
                let body =
                    payload::pagerduty::event(alert, key.expose(), &pd.source, &pd.severity_map);
                self.post(&pd.events_url, json_bytes(&body), &[]).await?;
                Ok(())
            }
            DestinationKind::Opsgenie(og) => {
                let key = self.secret(&og.api_key)?;
                let body = payload::opsgenie::create_alert(alert, &og.responders);
                let headers = [(
                    "authorization".to_owned(),
                    format!("GenieKey {}", key.expose()),
                )];
                self.post(
                    &format!("{}/v2/alerts", og.api_url),
                    json_bytes(&body),
                    &headers,
                )
                .await?;
                Ok(())
            }
            DestinationKind::Webhook(wh) => {
                let url = match &wh.url {
                    WebhookUrl::Plain(u) => crate::Secret::new(u.clone()),
                    WebhookUrl::Secret(source) => self.secret(source)?,
                };
                let body = payload::webhook::body(wh.template.as_deref(), alert, delivery_id)
                    .map_err(|message| DeliveryError::Payload {
                        destination: self.name().to_owned(),
                        message,
                    })?;
                let timestamp = chrono::Utc::now().timestamp();
                let mut headers: Vec<(String, String)> = wh
                    .headers
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                headers.push((
                    payload::webhook::DELIVERY_HEADER.to_owned(),
                    delivery_id.to_owned(),
                ));
                headers.push((
                    payload::webhook::TIMESTAMP_HEADER.to_owned(),
                    timestamp.to_string(),
                ));
                if let Some(source) = &wh.signing_secret {
                    let secret = self.secret(source)?;
                    headers.push((
                        wh.signature_header.clone(),
                        payload::webhook::signature(secret.expose().as_bytes(), timestamp, &body),
                    ));
                }
                self.post(url.expose(), body, &headers).await?;
                Ok(())
            }
            DestinationKind::Email(email) => self.send_email(email, alert, delivery_id).await,
            DestinationKind::Sns(sns) => self.send_sns(sns, alert, delivery_id).await,
            DestinationKind::Stdout(format) => {
                let line = match format {
                    StdoutFormat::Json => serde_json::to_string(alert).unwrap_or_default(),
                    StdoutFormat::Text => format!(
                        "[{}] {}: {} ({} {} {})",
                        alert.severity,
                        alert.rule_id,
                        alert.title,
                        payload::account_label(alert),
                        alert.region,
                        alert.event_time
                    ),
                };
                let _guard = self.file_lock.lock().unwrap_or_else(|p| p.into_inner());
                let mut out = std::io::stdout().lock();
                writeln!(out, "{line}")
                    .and_then(|()| out.flush())
                    .map_err(|e| DeliveryError::Transport {
                        destination: self.name().to_owned(),
                        message: format!("writing to stdout: {e}"),
                    })
            }
            DestinationKind::JsonLines(path) => {
                let mut line = serde_json::to_vec(alert).map_err(|e| DeliveryError::Payload {
                    destination: self.name().to_owned(),
                    message: e.to_string(),
                })?;
                line.push(b'\n');
                let _guard = self.file_lock.lock().unwrap_or_else(|p| p.into_inner());
                let write = || -> std::io::Result<()> {
                    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                        std::fs::create_dir_all(dir)?;
                    }
                    let mut file = std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(path)?;
                    file.write_all(&line)?;
                    file.sync_data()
                };
                write().map_err(|e| DeliveryError::Transport {
                    destination: self.name().to_owned(),
                    message: format!("appending to {}: {e}", path.display()),
                })
            }
        }
    }

    /// POSTs `body` as JSON; returns the status and body of a 2xx answer, or the error.
    async fn post(
        &self,
        url: &str,
        body: Vec<u8>,
        headers: &[(String, String)],
    ) -> Result<(u16, String), DeliveryError> {
        let mut map = HeaderMap::new();
        map.insert(
            reqwest::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        map.insert(
            reqwest::header::USER_AGENT,
            HeaderValue::from_static(concat!("trailwatch/", env!("CARGO_PKG_VERSION"))),
        );
        for (k, v) in headers {
            let name = HeaderName::from_bytes(k.as_bytes());
            let value = HeaderValue::from_str(v);
            match (name, value) {
                (Ok(name), Ok(mut value)) => {
                    if name == reqwest::header::AUTHORIZATION {
                        value.set_sensitive(true);
                    }
                    map.insert(name, value);
                }
                _ => {
                    return Err(DeliveryError::Payload {
                        destination: self.name().to_owned(),
                        message: format!("header {k:?} has an invalid name or value"),
                    });
                }
            }
        }
        let response = self
            .http
            .post(url)
            .headers(map)
            .body(body)
            .timeout(self.config.timeout)
            .send()
            .await
            .map_err(|e| self.transport_error(e))?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, SystemTime::now()));
        let text = response.text().await.map_err(|e| self.transport_error(e))?;
        if (200..300).contains(&status) {
            Ok((status, text))
        } else {
            Err(DeliveryError::Http {
                destination: self.name().to_owned(),
                status,
                retry_after,
                body: payload::truncate(text.trim(), MAX_ERROR_BODY),
            })
        }
    }

    fn transport_error(&self, e: reqwest::Error) -> DeliveryError {
        let timed_out = e.is_timeout();
        // Drop the URL: webhook URLs carry tokens.
        let e = e.without_url();
        let mut message = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            message.push_str(": ");
            message.push_str(&s.to_string());
            source = s.source();
        }
        if timed_out {
            message = format!("timed out after {:?} ({message})", self.config.timeout);
        }
        DeliveryError::Transport {
            destination: self.name().to_owned(),
            message,
        }
    }

    async fn send_email(
        &self,
        email: &EmailConfig,
        alert: &Alert,
        delivery_id: &str,
    ) -> Result<(), DeliveryError> {
        use lettre::transport::smtp::authentication::Credentials;
        use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

        let message = payload::email::message(alert, &email.from, &email.to, delivery_id).map_err(
            |message| DeliveryError::Payload {
                destination: self.name().to_owned(),
                message,
            },
        )?;
        let smtp_err = |e: lettre::transport::smtp::Error| DeliveryError::Smtp {
            destination: self.name().to_owned(),
            permanent: e.is_permanent(),
            message: e.to_string(),
        };
        let builder = match email.tls {
            TlsMode::Starttls => {
                AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&email.smtp_host)
                    .map_err(smtp_err)?
            }
            TlsMode::Tls => {
                AsyncSmtpTransport::<Tokio1Executor>::relay(&email.smtp_host).map_err(smtp_err)?
            }
            TlsMode::None => {
                AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&email.smtp_host)
            }
        };
        let mut builder = builder.port(email.port).timeout(Some(self.config.timeout));
        if let Some((user, source)) = &email.credentials {
            let password = self.secret(source)?;
            builder =
                builder.credentials(Credentials::new(user.clone(), password.expose().to_owned()));
        }
        let transport = builder.build();
        let response = transport.send(message).await.map_err(smtp_err)?;
        if response.is_positive() {
            Ok(())
        } else {
            Err(DeliveryError::Smtp {
                destination: self.name().to_owned(),
                permanent: false,
                message: format!("unexpected answer {}", response.code()),
            })
        }
    }

    async fn sns_client(&self, sns: &SnsConfig) -> Result<&aws_sdk_sns::Client, DeliveryError> {
        self.sns
            .get_or_try_init(|| async {
                let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
                    .retry_config(aws_config::retry::RetryConfig::disabled())
                    .timeout_config(
                        aws_config::timeout::TimeoutConfig::builder()
                            .operation_timeout(self.config.timeout)
                            .build(),
                    );
                if let Some(region) = &sns.region {
                    loader = loader.region(aws_config::Region::new(region.clone()));
                }
                if let Some(url) = &sns.endpoint_url {
                    loader = loader.endpoint_url(url);
                }
                if let Some((id, secret)) = &sns.credentials {
                    let id = self.secret(id)?;
                    let secret = self.secret(secret)?;
                    loader = loader.credentials_provider(aws_sdk_sns::config::Credentials::new(
                        id.expose(),
                        secret.expose(),
                        None,
                        None,
                        "trailwatch-config",
                    ));
                }
                let conf = loader.load().await;
                Ok(aws_sdk_sns::Client::new(&conf))
            })
            .await
    }

    async fn send_sns(
        &self,
        sns: &SnsConfig,
        alert: &Alert,
        delivery_id: &str,
    ) -> Result<(), DeliveryError> {
        use aws_sdk_sns::error::{ProvideErrorMetadata, SdkError};
        use aws_sdk_sns::types::MessageAttributeValue;

        let client = self.sns_client(sns).await?;
        let message = payload::sns::message(alert).map_err(|message| DeliveryError::Payload {
            destination: self.name().to_owned(),
            message,
        })?;
        let mut request = client
            .publish()
            .topic_arn(&sns.topic_arn)
            .message(message)
            .subject(payload::sns::subject(alert));
        for (name, value) in payload::sns::attributes(alert) {
            let attr = MessageAttributeValue::builder()
                .data_type("String")
                .string_value(value)
                .build()
                .map_err(|e| DeliveryError::Payload {
                    destination: self.name().to_owned(),
                    message: e.to_string(),
                })?;
            request = request.message_attributes(name, attr);
        }
        if sns.fifo {
            request = request
                .message_group_id(&sns.message_group_id)
                .message_deduplication_id(delivery_id);
        }
        match request.send().await {
            Ok(_) => Ok(()),
            Err(err) => {
                let status = err.raw_response().map(|r| r.status().as_u16());
                let retryable = match &err {
                    SdkError::ServiceError(_) => {
                        let code = err.code().unwrap_or_default();
                        status.is_none_or(|s| s >= 500 || s == 429)
                            || code.contains("Throttl")
                            || code == "InternalError"
                    }
                    // Timeouts, connection failures, unreadable answers: try again.
                    _ => true,
                };
                let message = match (err.code(), err.message()) {
                    (Some(code), Some(msg)) => format!("{code}: {msg}"),
                    _ => aws_sdk_sns::error::DisplayErrorContext(&err).to_string(),
                };
                Err(DeliveryError::Aws {
                    destination: self.name().to_owned(),
                    message: match status {
                        Some(s) => format!("HTTP {s}: {message}"),
                        None => message,
                    },
                    retryable,
                })
            }
        }
    }
}

fn json_bytes(value: &serde_json::Value) -> Vec<u8> {
    // Serialising a Value cannot fail.
    serde_json::to_vec(value).unwrap_or_default()
}

/// The shared HTTP client.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .pool_idle_timeout(Duration::from_secs(60))
        .build()
        .unwrap_or_else(|_| reqwest::Client::new())
}

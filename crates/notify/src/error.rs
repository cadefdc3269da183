//! Errors: one for a delivery attempt, one for the notifier's API.

use std::time::Duration;

use crate::outbox::OutboxError;

/// Why one delivery attempt failed. Never contains a secret: HTTP errors are stripped of
/// their URL (webhook URLs carry tokens).
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// The destination answered with a non-success HTTP status.
    #[error("destination {destination}: HTTP {status}: {body}")]
    Http {
        /// The destination name.
        destination: String,
        /// The status.
        status: u16,
        /// `Retry-After`, when given.
        retry_after: Option<Duration>,
        /// The start of the response body.
        body: String,
    },
    /// The destination answered 2xx but said no in the body (Slack's `"ok": false`).
    #[error("destination {destination}: refused: {reason}")]
    Refused {
        /// The destination name.
        destination: String,
        /// The reason it gave.
        reason: String,
        /// Whether a retry may succeed.
        retryable: bool,
    },
    /// The request could not be made or timed out.
    #[error("destination {destination}: {message}")]
    Transport {
        /// The destination name.
        destination: String,
        /// What happened.
        message: String,
    },
    /// The SMTP server answered with an error.
    #[error("destination {destination}: SMTP: {message}")]
    Smtp {
        /// The destination name.
        destination: String,
        /// The server's answer or the client's error.
        message: String,
        /// A 5xx answer: retrying will not help.
        permanent: bool,
    },
    /// AWS refused or failed the call.
    #[error("destination {destination}: AWS: {message}")]
    Aws {
        /// The destination name.
        destination: String,
        /// The error code and message.
        message: String,
        /// Whether a retry may succeed.
        retryable: bool,
    },
    /// A secret could not be read (retried: the file or variable may appear).
    #[error("destination {destination}: {source}")]
    Secret {
        /// The destination name.
        destination: String,
        /// The cause.
        #[source]
        source: crate::secret::SecretError,
    },
    /// The payload could not be built (e.g. a template that does not produce JSON).
    #[error("destination {destination}: payload: {message}")]
    Payload {
        /// The destination name.
        destination: String,
        /// What is wrong.
        message: String,
    },
    /// The delivery names a destination that the config no longer has.
    #[error("destination {0} is not configured")]
    UnknownDestination(String),
}

impl DeliveryError {
    /// Whether another attempt may succeed.
    pub fn retryable(&self) -> bool {
        match self {
            DeliveryError::Http { status, .. } => {
                matches!(status, 408 | 425 | 429) || *status >= 500
            }
            DeliveryError::Refused { retryable, .. } | DeliveryError::Aws { retryable, .. } => {
                *retryable
            }
            DeliveryError::Transport { .. } | DeliveryError::Secret { .. } => true,
            DeliveryError::Smtp { permanent, .. } => !permanent,
            DeliveryError::Payload { .. } | DeliveryError::UnknownDestination(_) => false,
        }
    }

    /// How long the destination asked us to wait, if it did.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            DeliveryError::Http { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// Errors of the [`Notifier`](crate::Notifier) API.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// The outbox failed.
    #[error(transparent)]
    Outbox(#[from] OutboxError),
    /// A delivery failed (from `send_test`).
    #[error("alert {dedup_key}: {source}")]
    Delivery {
        /// The alert's dedup key.
        dedup_key: String,
        /// The failure.
        #[source]
        source: DeliveryError,
    },
    /// A destination name that is not in the config.
    #[error("unknown destination {0:?}")]
    UnknownDestination(String),
    /// A destination could not be set up (e.g. an invalid SMTP host).
    #[error("destination {destination}: {message}")]
    Setup {
        /// The destination name.
        destination: String,
        /// What is wrong.
        message: String,
    },
}

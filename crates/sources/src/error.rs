//! The sources' error type: every variant carries what a person needs to find the input.

use trailwatch_store::StoreError;

use crate::pipeline::PipelineError;

/// Why a source could not process an input or talk to AWS.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// An SQS call failed.
    #[error("SQS {operation} on queue {queue}: {message}")]
    Sqs {
        /// The queue URL.
        queue: String,
        /// The API operation, e.g. `ReceiveMessage`.
        operation: &'static str,
        /// The SDK's error, with its context.
        message: String,
    },
    /// GetObject failed for another reason than a missing object.
    #[error("S3 GetObject s3://{bucket}/{key}: {message}")]
    GetObject {
        /// The bucket.
        bucket: String,
        /// The key.
        key: String,
        /// The SDK's error, with its context.
        message: String,
    },
    /// The object a notification announced does not exist (or is not readable).
    #[error("S3 object s3://{bucket}/{key} is missing")]
    ObjectMissing {
        /// The bucket.
        bucket: String,
        /// The key.
        key: String,
    },
    /// ListObjectsV2 failed.
    #[error("S3 ListObjectsV2 s3://{bucket}/{prefix}: {message}")]
    List {
        /// The bucket.
        bucket: String,
        /// The prefix listed.
        prefix: String,
        /// The SDK's error, with its context.
        message: String,
    },
    /// An input could not be decoded as a whole (not a notification, truncated or corrupt).
    #[error("undecodable input {origin}{}: {reason}", message_suffix(.message_id))]
    Undecodable {
        /// The input: a queue name or an `s3://` URI.
        origin: String,
        /// The SQS or SNS message id, when there is one.
        message_id: Option<String>,
        /// What the decoder said.
        reason: String,
    },
    /// The pipeline refused a batch.
    #[error("{origin}{}: {source}", message_suffix(.message_id))]
    Pipeline {
        /// The input the batch came from.
        origin: String,
        /// The message id, when there is one.
        message_id: Option<String>,
        /// The pipeline's error.
        #[source]
        source: PipelineError,
    },
    /// The state store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A local I/O error (binding a port, reading a certificate file).
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A worker task panicked or was cancelled.
    #[error("worker task for {what}: {message}")]
    Task {
        /// What the task was doing.
        what: String,
        /// The join error.
        message: String,
    },
    /// Invalid settings discovered at start-up (e.g. an unreadable TLS key).
    #[error("{0}")]
    Setup(String),
}

fn message_suffix(id: &Option<String>) -> String {
    id.as_ref()
        .map(|id| format!(" (message {id})"))
        .unwrap_or_default()
}

/// Formats an AWS SDK error with its whole chain of causes (the SDK's `Display` alone says
/// only "service error").
pub fn sdk_message<E: std::error::Error>(err: &E) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_their_input() {
        let e = SourceError::ObjectMissing {
            bucket: "b".into(),
            key: "AWSLogs/1/x.json.gz".into(),
        };
        assert_eq!(
            e.to_string(),
            "S3 object s3://b/AWSLogs/1/x.json.gz is missing"
        );
        let e = SourceError::Undecodable {
            origin: "queue-a".into(),
            message_id: Some("m-1".into()),
            reason: "not JSON".into(),
        };
        assert_eq!(
            e.to_string(),
            "undecodable input queue-a (message m-1): not JSON"
        );
    }
}

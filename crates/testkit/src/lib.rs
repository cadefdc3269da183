//! Test support for trailwatch: real local servers on free loopback ports.
//!
//! - [`Recorder`]: a small HTTP server (axum, in-process) that records every request and can be
//!   told to fail, rate-limit, hang or flake, then come back. Stands in for Slack, PagerDuty,
//!   Opsgenie and generic webhooks.
//! - [`SmtpServer`]: `aiosmtpd` from the project's Python venv, with a handler that writes each
//!   message to a directory and can be told to answer `451` for the next N messages.
//! - [`MotoServer`]: the moto AWS emulator (`moto_server`) from the same venv, and in [`aws`]
//!   the fixtures tests build on it (queues, a bucket notifying a queue, uploads, corpora).
//!
//! Every server binds `127.0.0.1` only, waits for readiness with a timeout, and is stopped when
//! its handle is dropped. The Python servers come from the venv that `scripts/test-deps.sh`
//! creates (`$TRAILWATCH_VENV`, default `~/.cache/trailwatch/venv`); when it is missing, `python3`
//! on `PATH` is tried, and a missing module fails with a message that names the script.
//!
//! Architecture Invariant: testkit never talks to anything but 127.0.0.1.

pub mod aws;
mod fault;
mod python;
mod recorder;

pub use fault::{Fault, FaultProxy};
pub use python::{MotoServer, SmtpMessage, SmtpServer, python_path, venv_dir};
pub use recorder::{Behavior, RecordedRequest, Recorder};

/// Why a test server could not be started or queried.
#[derive(Debug, thiserror::Error)]
pub enum TestkitError {
    /// An I/O error while binding, spawning or reading.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The server did not become ready in time.
    #[error("{server} was not ready within {seconds} s: {detail}")]
    NotReady {
        /// Which server.
        server: &'static str,
        /// The timeout.
        seconds: u64,
        /// What the last probe saw (or the child's stderr).
        detail: String,
    },
    /// The child process exited before it was ready, typically because the venv is missing.
    #[error(
        "{server} exited before it was ready ({status}); is the test venv installed? Run scripts/test-deps.sh (venv: {venv}). stderr: {stderr}"
    )]
    ChildExited {
        /// Which server.
        server: &'static str,
        /// The exit status.
        status: String,
        /// The venv directory that was looked at.
        venv: String,
        /// The child's stderr (tail).
        stderr: String,
    },
}

/// A free TCP port on 127.0.0.1 (bound, then released; a tiny race with other processes is
/// possible, which is why the servers that take a port number are probed for readiness).
pub fn free_port() -> Result<u16, TestkitError> {
    let listener =
        std::net::TcpListener::bind("127.0.0.1:0").map_err(|source| TestkitError::Io {
            what: "binding 127.0.0.1:0".into(),
            source,
        })?;
    let port = listener
        .local_addr()
        .map_err(|source| TestkitError::Io {
            what: "reading local address".into(),
            source,
        })?
        .port();
    Ok(port)
}

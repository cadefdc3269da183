//! Remediation: carry out the plans that rules put into alerts, safely.
//!
//! The flow, for each alert whose rule has a `remediate:` block:
//! 1. [`Remediator::prepare`] (before the alert is written to the outbox) fixes the mode the
//!    config gives the rule, the job id and approval links, or why nothing will run
//!    (trailwatch's own call, an account or resource guard), so the alert tells the truth;
//! 2. [`Remediator::submit`] (after the outbox write, before the source is acknowledged)
//!    stores the job, idempotently, and audits the plan;
//! 3. [`Remediator::run_next`] runs queued jobs: guards that need AWS (the ignore tag, the
//!    rate limit), then the steps with their retry policy and `on_error` catch paths;
//!    `notify` steps go back to the outbox through a [`Notifier`].
//!
//! Code map: `config` (the `remediation:` section), `store` (job queue and hash-chained
//! audit trail in SQLite), `guard` (self-loop and allow/deny checks), `aws` (the SDK calls
//! behind each action), `activity` (what an access key did), `workflow` (steps, retries,
//! catch), `approval` (signed links).
//!
//! Invariants: dry-run is the default and runs nothing; a job runs at most one step at a
//! time and every attempt is audited before and after; an event whose principal is
//! trailwatch's own never gets a job.

pub mod activity;
pub mod approval;
pub mod aws;
pub mod config;
pub mod guard;
pub mod store;
pub mod workflow;

pub use config::{Mode, RemediationConfig};
pub use store::{AuditEntry, Job, JobStatus, Store};
pub use workflow::{Notifier, Remediator, StepOutcome};

/// Remediation failures that are not a step's own (those are audited and handled).
#[derive(Debug, thiserror::Error)]
pub enum RemediateError {
    /// The SQLite store failed.
    #[error("remediation store {path}: {reason}")]
    Store {
        /// The database file.
        path: String,
        /// What SQLite said.
        reason: String,
    },
    /// The audit trail does not verify.
    #[error("audit trail entry {seq} was tampered with: {reason}")]
    Tampered {
        /// The first entry that does not fit.
        seq: i64,
        /// How.
        reason: String,
    },
    /// No job of that id.
    #[error("no remediation job {0}")]
    NoSuchJob(String),
    /// A decision on a job that is not waiting for one.
    #[error("job {id} is {status}, not awaiting approval")]
    NotAwaiting {
        /// The job.
        id: String,
        /// Its status.
        status: &'static str,
    },
    /// AWS set-up failed (credentials, STS).
    #[error("AWS: {0}")]
    Aws(String),
    /// An approval link whose signature does not verify.
    #[error("approval link for {0} is not valid")]
    BadSignature(String),
}

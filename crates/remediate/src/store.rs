//! Durable remediation state in SQLite: the job queue and the audit trail.
//!
//! The audit trail is append-only twice over: triggers refuse UPDATE and DELETE, and each
//! entry carries the SHA-256 of the previous one, so [`Store::verify_audit`] finds an entry
//! that was changed, removed or inserted behind SQLite's back.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use trailwatch_alert::Alert;

use crate::RemediateError;

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum JobStatus {
    /// Planned only (dry-run): nothing will run.
    DryRun,
    /// Waiting for approval.
    AwaitingApproval,
    /// Ready to run.
    Queued,
    /// Running (a restart resumes it).
    Running,
    /// Every step succeeded.
    Succeeded,
    /// A step failed for good (its catch path, if any, ran).
    Failed,
    /// Rejected by a person.
    Rejected,
    /// Nobody approved it in time.
    Expired,
    /// A guard ruled it out.
    Skipped,
}

impl JobStatus {
    /// The name stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::DryRun => "dry-run",
            JobStatus::AwaitingApproval => "awaiting-approval",
            JobStatus::Queued => "queued",
            JobStatus::Running => "running",
            JobStatus::Succeeded => "succeeded",
            JobStatus::Failed => "failed",
            JobStatus::Rejected => "rejected",
            JobStatus::Expired => "expired",
            JobStatus::Skipped => "skipped",
        }
    }

    /// Every status, in life order.
    pub const ALL: [JobStatus; 9] = [
        JobStatus::DryRun,
        JobStatus::AwaitingApproval,
        JobStatus::Queued,
        JobStatus::Running,
        JobStatus::Succeeded,
        JobStatus::Failed,
        JobStatus::Rejected,
        JobStatus::Expired,
        JobStatus::Skipped,
    ];

    /// The status of a name (`dry-run`, `awaiting-approval`, ...).
    pub fn from_name(name: &str) -> Option<JobStatus> {
        JobStatus::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

/// One queued remediation: the alert (with its plan) and where it stands.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Job {
    /// `rem-` and a hash of the alert's dedup key: the same alert is one job, however often
    /// it is submitted.
    pub id: String,
    /// The alert, whose `remediation` holds the plan.
    pub alert: Alert,
    /// Status.
    pub status: JobStatus,
    /// Created (ms since the epoch).
    pub created_ms: i64,
    /// When an approval request lapses (ms), in approval mode.
    pub expires_ms: Option<i64>,
    /// Who approved or rejected it.
    pub decided_by: Option<String>,
}

/// One audit entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Position in the trail.
    pub seq: i64,
    /// When (RFC 3339).
    pub at: String,
    /// The job.
    pub job_id: String,
    /// The rule (why).
    pub rule_id: String,
    /// The event (why).
    pub event_id: String,
    /// The step, when the entry is about one.
    pub step: Option<String>,
    /// The action.
    pub action: Option<String>,
    /// What happened: planned, dry-run, awaiting-approval, approved, rejected, expired,
    /// skipped, started, retrying, succeeded, failed.
    pub status: String,
    /// Who: trailwatch's principal, or the person who approved.
    pub actor: String,
    /// Why, or what went wrong.
    pub reason: Option<String>,
    /// The request (API and parameters).
    pub request: Option<Value>,
    /// The response.
    pub response: Option<Value>,
    /// SHA-256 of the previous entry.
    pub prev_hash: String,
    /// SHA-256 of this entry.
    pub hash: String,
}

/// A new audit entry, before it has its place and hash.
#[derive(Debug, Clone, Default)]
pub struct NewEntry<'a> {
    /// The step.
    pub step: Option<&'a str>,
    /// The action.
    pub action: Option<&'a str>,
    /// What happened.
    pub status: &'a str,
    /// Who.
    pub actor: &'a str,
    /// Why.
    pub reason: Option<String>,
    /// Request.
    pub request: Option<Value>,
    /// Response.
    pub response: Option<Value>,
}

/// The remediation database.
#[derive(Debug)]
pub struct Store {
    conn: Connection,
    path: String,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    rule_id TEXT NOT NULL,
    alert TEXT NOT NULL,
    status TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    expires_ms INTEGER,
    decided_by TEXT
);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs(status);
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    at_ms INTEGER NOT NULL,
    job_id TEXT NOT NULL,
    rule_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    step TEXT,
    action TEXT,
    status TEXT NOT NULL,
    actor TEXT NOT NULL,
    reason TEXT,
    request TEXT,
    response TEXT,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_rule ON audit(rule_id, status, at_ms);
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
";

/// The hash of the empty trail's "previous entry".
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

fn store_error(path: &str) -> impl Fn(rusqlite::Error) -> RemediateError + '_ {
    move |e| RemediateError::Store {
        path: path.to_owned(),
        reason: e.to_string(),
    }
}

impl Store {
    /// Opens (or creates) the database. The CLI's approvals and the service share it, so a
    /// writer waits for the other's lock.
    pub fn open(path: &Path) -> Result<Store, RemediateError> {
        let display = path.display().to_string();
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| RemediateError::Store {
                path: display.clone(),
                reason: e.to_string(),
            })?;
        }
        let conn =
            trailwatch_store::open_durable(path, SCHEMA, Some(std::time::Duration::from_secs(10)))
                .map_err(store_error(&display))?;
        Ok(Store {
            conn,
            path: display,
        })
    }

    fn err(&self) -> impl Fn(rusqlite::Error) -> RemediateError + '_ {
        store_error(&self.path)
    }

    /// Adds a job unless it exists; returns whether it was new.
    pub fn insert_job(&self, job: &Job) -> Result<bool, RemediateError> {
        let alert = serde_json::to_string(&job.alert).unwrap_or_default();
        let n = self
            .conn
            .execute(
                "INSERT OR IGNORE INTO jobs (id, rule_id, alert, status, created_ms, expires_ms, decided_by) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![job.id, job.alert.rule_id, alert, job.status.as_str(), job.created_ms, job.expires_ms, job.decided_by],
            )
            .map_err(self.err())?;
        Ok(n == 1)
    }

    /// A job by id.
    pub fn job(&self, id: &str) -> Result<Option<Job>, RemediateError> {
        self.conn
            .query_row(
                "SELECT id, alert, status, created_ms, expires_ms, decided_by FROM jobs WHERE id = ?1",
                [id],
                row_to_job,
            )
            .optional()
            .map_err(self.err())
    }

    /// Jobs, newest first, optionally of one status.
    pub fn jobs(
        &self,
        status: Option<JobStatus>,
        limit: usize,
    ) -> Result<Vec<Job>, RemediateError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT id, alert, status, created_ms, expires_ms, decided_by FROM jobs WHERE (?1 IS NULL OR status = ?1) ORDER BY created_ms DESC, id LIMIT ?2",
            )
            .map_err(self.err())?;
        let rows = stmt
            .query_map(
                params![status.map(JobStatus::as_str), limit as i64],
                row_to_job,
            )
            .map_err(self.err())?;
        rows.collect::<Result<_, _>>().map_err(self.err())
    }

    /// The next job to run: a queued one, or a running one a crash interrupted.
    pub fn next_runnable(&self) -> Result<Option<Job>, RemediateError> {
        self.conn
            .query_row(
                "SELECT id, alert, status, created_ms, expires_ms, decided_by FROM jobs WHERE status IN ('queued', 'running') ORDER BY created_ms, id LIMIT 1",
                [],
                row_to_job,
            )
            .optional()
            .map_err(self.err())
    }

    /// Moves a job from one status to another; false when it was not in `from` (someone
    /// else decided first).
    pub fn transition(
        &self,
        id: &str,
        from: &[JobStatus],
        to: JobStatus,
        decided_by: Option<&str>,
    ) -> Result<bool, RemediateError> {
        let from: Vec<&str> = from.iter().map(|s| s.as_str()).collect();
        let list = from
            .iter()
            .map(|s| format!("'{s}'"))
            .collect::<Vec<_>>()
            .join(",");
        let n = self
            .conn
            .execute(
                &format!("UPDATE jobs SET status = ?2, decided_by = COALESCE(?3, decided_by) WHERE id = ?1 AND status IN ({list})"),
                params![id, to.as_str(), decided_by],
            )
            .map_err(self.err())?;
        Ok(n == 1)
    }

    /// Approval requests whose time ran out.
    pub fn lapsed(&self, now_ms: i64) -> Result<Vec<Job>, RemediateError> {
        let mut stmt = self
            .conn
            .prepare("SELECT id, alert, status, created_ms, expires_ms, decided_by FROM jobs WHERE status = 'awaiting-approval' AND expires_ms IS NOT NULL AND expires_ms <= ?1")
            .map_err(self.err())?;
        let rows = stmt.query_map([now_ms], row_to_job).map_err(self.err())?;
        rows.collect::<Result<_, _>>().map_err(self.err())
    }

    /// How many times a rule's jobs started since `since_ms` (for the rate limit).
    pub fn runs_since(&self, rule_id: &str, since_ms: i64) -> Result<u64, RemediateError> {
        self.conn
            .query_row(
                "SELECT COUNT(DISTINCT job_id) FROM audit WHERE rule_id = ?1 AND status = 'started' AND step IS NULL AND at_ms >= ?2",
                params![rule_id, since_ms],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n as u64)
            .map_err(self.err())
    }

    /// Appends an audit entry for a job.
    pub fn audit(&mut self, job: &Job, entry: NewEntry<'_>) -> Result<AuditEntry, RemediateError> {
        let err = store_error(&self.path);
        let tx = self.conn.transaction().map_err(&err)?;
        let prev: String = tx
            .query_row(
                "SELECT hash FROM audit ORDER BY seq DESC LIMIT 1",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(&err)?
            .unwrap_or_else(|| GENESIS.to_owned());
        let seq: i64 = tx
            .query_row("SELECT COALESCE(MAX(seq), 0) + 1 FROM audit", [], |r| {
                r.get(0)
            })
            .map_err(&err)?;
        let now = chrono::Utc::now();
        let mut e = AuditEntry {
            seq,
            at: now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            job_id: job.id.clone(),
            rule_id: job.alert.rule_id.clone(),
            event_id: job.alert.event_id.clone(),
            step: entry.step.map(str::to_owned),
            action: entry.action.map(str::to_owned),
            status: entry.status.to_owned(),
            actor: entry.actor.to_owned(),
            reason: entry.reason,
            request: entry.request,
            response: entry.response,
            prev_hash: prev,
            hash: String::new(),
        };
        e.hash = entry_hash(&e);
        tx.execute(
            "INSERT INTO audit (seq, at, at_ms, job_id, rule_id, event_id, step, action, status, actor, reason, request, response, prev_hash, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
            params![
                e.seq, e.at, now.timestamp_millis(), e.job_id, e.rule_id, e.event_id, e.step, e.action, e.status, e.actor, e.reason,
                e.request.as_ref().map(Value::to_string), e.response.as_ref().map(Value::to_string), e.prev_hash, e.hash
            ],
        )
        .map_err(&err)?;
        tx.commit().map_err(&err)?;
        Ok(e)
    }

    /// The audit trail, oldest first, optionally for one job.
    pub fn audit_entries(&self, job_id: Option<&str>) -> Result<Vec<AuditEntry>, RemediateError> {
        let mut stmt = self
            .conn
            .prepare("SELECT seq, at, job_id, rule_id, event_id, step, action, status, actor, reason, request, response, prev_hash, hash FROM audit WHERE (?1 IS NULL OR job_id = ?1) ORDER BY seq")
            .map_err(self.err())?;
        let rows = stmt
            .query_map([job_id], |r| {
                let json = |i: usize| -> rusqlite::Result<Option<Value>> {
                    Ok(r.get::<_, Option<String>>(i)?
                        .and_then(|s| serde_json::from_str(&s).ok()))
                };
                Ok(AuditEntry {
                    seq: r.get(0)?,
                    at: r.get(1)?,
                    job_id: r.get(2)?,
                    rule_id: r.get(3)?,
                    event_id: r.get(4)?,
                    step: r.get(5)?,
                    action: r.get(6)?,
                    status: r.get(7)?,
                    actor: r.get(8)?,
                    reason: r.get(9)?,
                    request: json(10)?,
                    response: json(11)?,
                    prev_hash: r.get(12)?,
                    hash: r.get(13)?,
                })
            })
            .map_err(self.err())?;
        rows.collect::<Result<_, _>>().map_err(self.err())
    }

    /// Checks the whole chain; the error names the first entry that does not fit.
    pub fn verify_audit(&self) -> Result<usize, RemediateError> {
        let entries = self.audit_entries(None)?;
        verify_chain(&entries)?;
        Ok(entries.len())
    }
}

/// Checks that every entry hashes to its `hash` and links to the one before.
pub fn verify_chain(entries: &[AuditEntry]) -> Result<(), RemediateError> {
    let mut prev = GENESIS.to_owned();
    for (i, e) in entries.iter().enumerate() {
        if e.seq != i as i64 + 1 {
            return Err(RemediateError::Tampered {
                seq: e.seq,
                reason: format!("entry {} is missing", i + 1),
            });
        }
        if e.prev_hash != prev {
            return Err(RemediateError::Tampered {
                seq: e.seq,
                reason: "it does not link to the entry before".into(),
            });
        }
        if entry_hash(e) != e.hash {
            return Err(RemediateError::Tampered {
                seq: e.seq,
                reason: "its contents do not match its hash".into(),
            });
        }
        prev = e.hash.clone();
    }
    Ok(())
}

fn entry_hash(e: &AuditEntry) -> String {
    let mut unhashed = e.clone();
    unhashed.hash = String::new();
    let canonical = serde_json::to_string(&unhashed).unwrap_or_default();
    hex::encode(Sha256::digest(canonical.as_bytes()))
}

fn row_to_job(r: &rusqlite::Row<'_>) -> rusqlite::Result<Job> {
    let alert: String = r.get(1)?;
    let alert = serde_json::from_str(&alert).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(1, rusqlite::types::Type::Text, Box::new(e))
    })?;
    Ok(Job {
        id: r.get(0)?,
        alert,
        // An unknown status (a newer trailwatch wrote it) is an error, not a guess.
        status: {
            let name: String = r.get(2)?;
            JobStatus::from_name(&name).ok_or_else(|| {
                rusqlite::Error::FromSqlConversionFailure(
                    2,
                    rusqlite::types::Type::Text,
                    format!("unknown job status {name:?}").into(),
                )
            })?
        },
        created_ms: r.get(3)?,
        expires_ms: r.get(4)?,
        decided_by: r.get(5)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(id: &str) -> Job {
        Job {
            id: id.into(),
            alert: serde_json::from_value(serde_json::json!({
                "rule_id": "r", "severity": "high", "title": "t", "body": "", "event_id": "e1",
                "event_time": "2024-01-01T00:00:00Z", "event_source": "ec2.amazonaws.com",
                "event_name": "X", "account": "1", "region": "us-east-1",
                "principal": {"type": "IAMUser", "name": "alice"}, "console_url": "",
                "dedup_key": "k", "origin": {"source": "t"}
            }))
            .unwrap(),
            status: JobStatus::Queued,
            created_ms: 1,
            expires_ms: None,
            decided_by: None,
        }
    }

    #[test]
    fn jobs_are_idempotent_and_transitions_are_guarded() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("r.sqlite")).unwrap();
        assert!(store.insert_job(&job("a")).unwrap());
        assert!(!store.insert_job(&job("a")).unwrap());
        assert!(
            store
                .transition("a", &[JobStatus::Queued], JobStatus::Running, None)
                .unwrap()
        );
        assert!(
            !store
                .transition("a", &[JobStatus::Queued], JobStatus::Running, None)
                .unwrap()
        );
        assert_eq!(
            store.next_runnable().unwrap().unwrap().status,
            JobStatus::Running
        );
    }

    #[test]
    fn an_unknown_status_is_an_error_not_a_guess() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("r.sqlite")).unwrap();
        store.insert_job(&job("a")).unwrap();
        store
            .conn
            .execute("UPDATE jobs SET status = 'paused' WHERE id = 'a'", [])
            .unwrap();
        let err = store.job("a").unwrap_err().to_string();
        assert!(err.contains("unknown job status \"paused\""), "{err}");
    }

    #[test]
    fn the_audit_trail_is_append_only_and_chained() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.sqlite");
        let mut store = Store::open(&path).unwrap();
        let j = job("a");
        for status in ["planned", "started", "succeeded"] {
            store
                .audit(
                    &j,
                    NewEntry {
                        status,
                        actor: "me",
                        ..NewEntry::default()
                    },
                )
                .unwrap();
        }
        assert_eq!(store.verify_audit().unwrap(), 3);
        let err = store
            .conn
            .execute("UPDATE audit SET actor = 'x'", [])
            .unwrap_err();
        assert!(err.to_string().contains("append-only"), "{err}");
        assert!(store.conn.execute("DELETE FROM audit", []).is_err());
        // Someone who drops the triggers to edit an entry is caught by the chain.
        store
            .conn
            .execute_batch(
                "DROP TRIGGER audit_no_update; UPDATE audit SET actor = 'mallory' WHERE seq = 2;",
            )
            .unwrap();
        let err = store.verify_audit().unwrap_err().to_string();
        assert!(
            err.contains("entry 2") && err.contains("do not match its hash"),
            "{err}"
        );
    }
}

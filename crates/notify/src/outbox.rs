//! The durable outbox: one SQLite row per (alert, destination).
//!
//! Life of a row: `pending` (or `digest`, waiting for its window to close) → `sent` once the
//! destination accepted it, or `dead` after too many attempts or a permanent refusal. Digest
//! members become `digested` when their batch message is created. `sent` and `digested` rows
//! are kept for `retain_sent` so that enqueueing the same alert again (after a crash and
//! re-processing of the same event) is a no-op: `UNIQUE (dedup_key, destination)`.
//!
//! Durability: WAL mode. The enqueue connection uses `synchronous=FULL`, so an alert is on
//! disk (fsynced) before `enqueue` returns, even across power loss. The worker connection
//! uses `synchronous=NORMAL`: in WAL mode that is still safe against a process crash
//! (kill -9), and on power loss can only forget the most recent state changes, which means
//! resending an alert that was already accepted (at-least-once), never losing one. It saves
//! an fsync per delivery.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};
use sha2::{Digest as _, Sha256};
use trailwatch_alert::Alert;

/// Outbox errors.
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    /// SQLite failed.
    #[error("outbox {path}: {context}: {source}")]
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// What was being done.
        context: &'static str,
        /// The SQLite error.
        #[source]
        source: rusqlite::Error,
    },
    /// The directory for the database could not be created.
    #[error("outbox {path}: cannot create its directory: {source}")]
    CreateDir {
        /// The database file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A stored alert could not be read back.
    #[error("outbox {path}: row {id} holds an unreadable alert: {source}")]
    Corrupt {
        /// The database file.
        path: PathBuf,
        /// The row id.
        id: i64,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
}

/// One delivery to attempt.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The row id.
    pub id: i64,
    /// The destination name.
    pub destination: String,
    /// The alert's dedup key.
    pub dedup_key: String,
    /// A stable id for this (alert, destination): the webhook delivery id, SNS FIFO
    /// deduplication id and email Message-ID.
    pub delivery_id: String,
    /// Attempts made so far.
    pub attempts: u32,
    /// The alert.
    pub alert: Alert,
}

/// A delivery that gave up, as `alerts dead` shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DeadLetter {
    /// The row id (what `alerts retry` takes).
    pub id: i64,
    /// The destination name.
    pub destination: String,
    /// The alert's dedup key.
    pub dedup_key: String,
    /// The alert's rule.
    pub rule_id: String,
    /// The alert's title.
    pub title: String,
    /// Attempts made.
    pub attempts: u32,
    /// The last error.
    pub last_error: String,
    /// When it was enqueued (RFC 3339).
    pub enqueued_at: String,
    /// When it gave up (RFC 3339).
    pub failed_at: String,
}

/// Which dead letters to resend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RetrySelector {
    /// All of them.
    All,
    /// These row ids.
    Ids(Vec<i64>),
    /// Those of one destination.
    Destination(String),
}

/// Row counts by state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct OutboxCounts {
    /// Waiting to be sent (including scheduled retries).
    pub pending: u64,
    /// Waiting for their digest window.
    pub digest: u64,
    /// Accepted by their destination (kept for idempotency).
    pub sent: u64,
    /// Folded into a digest message.
    pub digested: u64,
    /// Given up.
    pub dead: u64,
}

/// Where an enqueued delivery starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schedule {
    /// Send as soon as possible.
    Now,
    /// Batch into the digest of the window `[start_ms, start_ms + len_ms)`.
    Digest {
        /// Window start, Unix ms.
        start_ms: i64,
        /// Window length, ms.
        len_ms: i64,
    },
}

/// The outbox.
pub struct Outbox {
    path: PathBuf,
    enqueue_conn: Mutex<Connection>,
    work_conn: Mutex<Connection>,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox").field("path", &self.path).finish()
    }
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS deliveries (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    dedup_key        TEXT NOT NULL,
    destination      TEXT NOT NULL,
    delivery_id      TEXT NOT NULL,
    alert            TEXT NOT NULL,
    state            TEXT NOT NULL CHECK (state IN ('pending', 'digest', 'sent', 'digested', 'dead')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms  INTEGER NOT NULL,
    digest_window_ms INTEGER,
    last_error       TEXT,
    created_ms       INTEGER NOT NULL,
    updated_ms       INTEGER NOT NULL,
    UNIQUE (dedup_key, destination)
);
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (state, next_attempt_ms);
";

/// The stable delivery id of (dedup key, destination): 32 hex digits of SHA-256.
pub fn delivery_id(dedup_key: &str, destination: &str) -> String {
    let mut h = Sha256::new();
    h.update(dedup_key.as_bytes());
    h.update([0u8]);
    h.update(destination.as_bytes());
    hex::encode(&h.finalize()[..16])
}

/// Now in Unix milliseconds.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

impl Outbox {
    /// Opens (creating if needed) the outbox at `path`.
    pub fn open(path: &Path) -> Result<Outbox, OutboxError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| OutboxError::CreateDir {
                path: path.to_owned(),
                source,
            })?;
        }
        let open = |sync: &str| -> Result<Connection, OutboxError> {
            let err = |context| {
                let path = path.to_owned();
                move |source| OutboxError::Sqlite {
                    path,
                    context,
                    source,
                }
            };
            let conn = Connection::open(path).map_err(err("opening"))?;
            conn.busy_timeout(Duration::from_secs(30))
                .map_err(err("setting busy_timeout"))?;
            conn.pragma_update(None, "journal_mode", "WAL")
                .map_err(err("enabling WAL"))?;
            conn.pragma_update(None, "synchronous", sync)
                .map_err(err("setting synchronous"))?;
            Ok(conn)
        };
        let enqueue_conn = open("FULL")?;
        enqueue_conn
            .execute_batch(SCHEMA)
            .map_err(|source| OutboxError::Sqlite {
                path: path.to_owned(),
                context: "creating the schema",
                source,
            })?;
        let work_conn = open("NORMAL")?;
        Ok(Outbox {
            path: path.to_owned(),
            enqueue_conn: Mutex::new(enqueue_conn),
            work_conn: Mutex::new(work_conn),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self, context: &'static str) -> impl FnOnce(rusqlite::Error) -> OutboxError + '_ {
        move |source| OutboxError::Sqlite {
            path: self.path.clone(),
            context,
            source,
        }
    }

    fn enqueue_conn(&self) -> MutexGuard<'_, Connection> {
        self.enqueue_conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn work_conn(&self) -> MutexGuard<'_, Connection> {
        self.work_conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Durably enqueues each alert for its destinations in one transaction; (dedup key,
    /// destination) pairs already in the outbox (in any state) are skipped. Returns the
    /// number of new deliveries.
    pub fn enqueue(
        &self,
        items: &[(&Alert, Vec<(String, Schedule)>)],
    ) -> Result<usize, OutboxError> {
        let mut conn = self.enqueue_conn();
        let tx = conn.transaction().map_err(self.err("beginning enqueue"))?;
        let now = now_ms();
        let mut added = 0;
        {
            let mut stmt = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO deliveries
                     (dedup_key, destination, delivery_id, alert, state, next_attempt_ms, digest_window_ms, created_ms, updated_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)",
                )
                .map_err(self.err("preparing enqueue"))?;
            for (alert, targets) in items {
                let json = serde_json::to_string(alert).map_err(|source| OutboxError::Corrupt {
                    path: self.path.clone(),
                    id: 0,
                    source,
                })?;
                for (destination, schedule) in targets {
                    let (state, next, window) = match schedule {
                        Schedule::Now => ("pending", now, None),
                        Schedule::Digest { start_ms, len_ms } => {
                            ("digest", start_ms + len_ms, Some(*start_ms))
                        }
                    };
                    added += stmt
                        .execute(params![
                            alert.dedup_key,
                            destination,
                            delivery_id(&alert.dedup_key, destination),
                            json,
                            state,
                            next,
                            window,
                            now
                        ])
                        .map_err(self.err("inserting a delivery"))?;
                }
            }
        }
        tx.commit().map_err(self.err("committing enqueue"))?;
        Ok(added)
    }

    fn read_delivery(
        &self,
        row: &rusqlite::Row<'_>,
    ) -> rusqlite::Result<(i64, String, String, String, u32, String)> {
        Ok((
            row.get(0)?,
            row.get(1)?,
            row.get(2)?,
            row.get(3)?,
            row.get(4)?,
            row.get(5)?,
        ))
    }

    /// Up to `limit` pending deliveries due at `now_ms` (to `destination`, or to any),
    /// oldest first, skipping `exclude` (the ones in flight).
    pub fn due(
        &self,
        destination: Option<&str>,
        now_ms: i64,
        limit: usize,
        exclude: &std::collections::HashSet<i64>,
    ) -> Result<Vec<Delivery>, OutboxError> {
        let conn = self.work_conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT id, destination, dedup_key, delivery_id, attempts, alert FROM deliveries
                 WHERE state = 'pending' AND next_attempt_ms <= ?1 AND (?3 IS NULL OR destination = ?3)
                 ORDER BY next_attempt_ms, id LIMIT ?2",
            )
            .map_err(self.err("preparing due"))?;
        let rows = stmt
            .query_map(
                params![now_ms, (limit + exclude.len()) as i64, destination],
                |row| self.read_delivery(row),
            )
            .map_err(self.err("querying due deliveries"))?;
        let mut out = Vec::new();
        for row in rows {
            let (id, destination, dedup_key, delivery_id, attempts, json) =
                row.map_err(self.err("reading a due delivery"))?;
            if exclude.contains(&id) {
                continue;
            }
            let alert = serde_json::from_str(&json).map_err(|source| OutboxError::Corrupt {
                path: self.path.clone(),
                id,
                source,
            })?;
            out.push(Delivery {
                id,
                destination,
                dedup_key,
                delivery_id,
                attempts,
                alert,
            });
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }

    /// The earliest `next_attempt_ms` among pending and digest rows, if any.
    pub fn next_due_ms(&self) -> Result<Option<i64>, OutboxError> {
        let conn = self.work_conn();
        conn.query_row(
            "SELECT MIN(next_attempt_ms) FROM deliveries WHERE state IN ('pending', 'digest')",
            [],
            |row| row.get::<_, Option<i64>>(0),
        )
        .map_err(self.err("querying the next due time"))
    }

    /// The destination accepted the delivery.
    pub fn mark_sent(&self, id: i64) -> Result<(), OutboxError> {
        self.work_conn()
            .execute(
                "UPDATE deliveries SET state = 'sent', attempts = attempts + 1, last_error = NULL, updated_ms = ?2 WHERE id = ?1",
                params![id, now_ms()],
            )
            .map_err(self.err("marking sent"))?;
        Ok(())
    }

    /// An attempt failed; try again at `next_attempt_ms`.
    pub fn mark_retry(
        &self,
        id: i64,
        next_attempt_ms: i64,
        error: &str,
    ) -> Result<(), OutboxError> {
        self.work_conn()
            .execute(
                "UPDATE deliveries SET attempts = attempts + 1, next_attempt_ms = ?2, last_error = ?3, updated_ms = ?4 WHERE id = ?1",
                params![id, next_attempt_ms, error, now_ms()],
            )
            .map_err(self.err("scheduling a retry"))?;
        Ok(())
    }

    /// Gives up on a delivery: it goes to the dead-letter list.
    pub fn mark_dead(&self, id: i64, error: &str) -> Result<(), OutboxError> {
        self.work_conn()
            .execute(
                "UPDATE deliveries SET state = 'dead', attempts = attempts + 1, last_error = ?2, updated_ms = ?3 WHERE id = ?1",
                params![id, error, now_ms()],
            )
            .map_err(self.err("marking dead"))?;
        Ok(())
    }

    /// The dead-letter list, oldest first.
    pub fn dead_letters(&self) -> Result<Vec<DeadLetter>, OutboxError> {
        let conn = self.work_conn();
        let mut stmt = conn
            .prepare(
                "SELECT id, destination, dedup_key, alert, attempts, COALESCE(last_error, ''), created_ms, updated_ms
                 FROM deliveries WHERE state = 'dead' ORDER BY id",
            )
            .map_err(self.err("preparing dead letters"))?;
        let rows = stmt
            .query_map([], |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, String>(3)?,
                    row.get::<_, u32>(4)?,
                    row.get::<_, String>(5)?,
                    row.get::<_, i64>(6)?,
                    row.get::<_, i64>(7)?,
                ))
            })
            .map_err(self.err("querying dead letters"))?;
        let mut out = Vec::new();
        for row in rows {
            let (id, destination, dedup_key, json, attempts, last_error, created, updated) =
                row.map_err(self.err("reading a dead letter"))?;
            let alert: Alert =
                serde_json::from_str(&json).map_err(|source| OutboxError::Corrupt {
                    path: self.path.clone(),
                    id,
                    source,
                })?;
            out.push(DeadLetter {
                id,
                destination,
                dedup_key,
                rule_id: alert.rule_id,
                title: alert.title,
                attempts,
                last_error,
                enqueued_at: rfc3339(created),
                failed_at: rfc3339(updated),
            });
        }
        Ok(out)
    }

    /// Puts dead letters back to `pending` with a fresh attempt budget; returns how many.
    pub fn retry_dead(&self, selector: &RetrySelector) -> Result<usize, OutboxError> {
        let mut conn = self.enqueue_conn();
        let now = now_ms();
        let tx = conn.transaction().map_err(self.err("beginning retry"))?;
        let n = match selector {
            RetrySelector::All => tx
                .execute(
                    "UPDATE deliveries SET state = 'pending', attempts = 0, next_attempt_ms = ?1, updated_ms = ?1 WHERE state = 'dead'",
                    params![now],
                )
                .map_err(self.err("retrying dead letters"))?,
            RetrySelector::Destination(d) => tx
                .execute(
                    "UPDATE deliveries SET state = 'pending', attempts = 0, next_attempt_ms = ?1, updated_ms = ?1 WHERE state = 'dead' AND destination = ?2",
                    params![now, d],
                )
                .map_err(self.err("retrying dead letters"))?,
            RetrySelector::Ids(ids) => {
                let mut n = 0;
                for id in ids {
                    n += tx
                        .execute(
                            "UPDATE deliveries SET state = 'pending', attempts = 0, next_attempt_ms = ?1, updated_ms = ?1 WHERE state = 'dead' AND id = ?2",
                            params![now, id],
                        )
                        .map_err(self.err("retrying a dead letter"))?;
                }
                n
            }
        };
        tx.commit().map_err(self.err("committing retry"))?;
        Ok(n)
    }

    /// Row counts by state.
    pub fn counts(&self) -> Result<OutboxCounts, OutboxError> {
        let conn = self.work_conn();
        let mut stmt = conn
            .prepare_cached("SELECT state, COUNT(*) FROM deliveries GROUP BY state")
            .map_err(self.err("preparing counts"))?;
        let rows = stmt
            .query_map([], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
            })
            .map_err(self.err("counting"))?;
        let mut counts = OutboxCounts::default();
        for row in rows {
            let (state, n) = row.map_err(self.err("reading counts"))?;
            let n = n.max(0) as u64;
            match state.as_str() {
                "pending" => counts.pending = n,
                "digest" => counts.digest = n,
                "sent" => counts.sent = n,
                "digested" => counts.digested = n,
                "dead" => counts.dead = n,
                _ => {}
            }
        }
        Ok(counts)
    }

    /// Turns every digest window that has closed by `now_ms` into one pending delivery per
    /// (destination, window), built by `combine(destination, window_start_ms, window_len_ms,
    /// alerts)`, and marks its members `digested`, all in
    /// one transaction. Returns the number of digest messages created.
    pub fn close_digests(
        &self,
        now_ms: i64,
        combine: impl Fn(&str, i64, i64, Vec<Alert>) -> Alert,
    ) -> Result<usize, OutboxError> {
        let mut conn = self.enqueue_conn();
        let tx = conn.transaction().map_err(self.err("beginning digest"))?;
        let groups: Vec<(String, i64, i64)> = {
            let mut stmt = tx
                .prepare(
                    "SELECT DISTINCT destination, digest_window_ms, next_attempt_ms FROM deliveries
                     WHERE state = 'digest' AND next_attempt_ms <= ?1",
                )
                .map_err(self.err("preparing digest groups"))?;
            let rows = stmt
                .query_map(params![now_ms], |row| {
                    Ok((row.get(0)?, row.get(1)?, row.get(2)?))
                })
                .map_err(self.err("querying digest groups"))?;
            rows.collect::<Result<_, _>>()
                .map_err(self.err("reading digest groups"))?
        };
        for (destination, window, end) in &groups {
            let members: Vec<(i64, String)> = {
                let mut stmt = tx
                    .prepare(
                        "SELECT id, alert FROM deliveries WHERE state = 'digest' AND destination = ?1 AND digest_window_ms = ?2 ORDER BY id",
                    )
                    .map_err(self.err("preparing digest members"))?;
                let rows = stmt
                    .query_map(params![destination, window], |row| {
                        Ok((row.get(0)?, row.get(1)?))
                    })
                    .map_err(self.err("querying digest members"))?;
                rows.collect::<Result<_, _>>()
                    .map_err(self.err("reading digest members"))?
            };
            let mut alerts = Vec::with_capacity(members.len());
            for (id, json) in &members {
                alerts.push(
                    serde_json::from_str(json).map_err(|source| OutboxError::Corrupt {
                        path: self.path.clone(),
                        id: *id,
                        source,
                    })?,
                );
            }
            let digest = combine(destination, *window, end - window, alerts);
            let json = serde_json::to_string(&digest).map_err(|source| OutboxError::Corrupt {
                path: self.path.clone(),
                id: 0,
                source,
            })?;
            tx.execute(
                "INSERT OR IGNORE INTO deliveries
                 (dedup_key, destination, delivery_id, alert, state, next_attempt_ms, created_ms, updated_ms)
                 VALUES (?1, ?2, ?3, ?4, 'pending', ?5, ?5, ?5)",
                params![
                    digest.dedup_key,
                    destination,
                    delivery_id(&digest.dedup_key, destination),
                    json,
                    now_ms
                ],
            )
            .map_err(self.err("inserting a digest"))?;
            tx.execute(
                "UPDATE deliveries SET state = 'digested', updated_ms = ?3 WHERE state = 'digest' AND destination = ?1 AND digest_window_ms = ?2",
                params![destination, window, now_ms],
            )
            .map_err(self.err("marking digest members"))?;
        }
        tx.commit().map_err(self.err("committing digest"))?;
        Ok(groups.len())
    }

    /// Sends every waiting delivery to a destination not in `known` to the dead-letter list
    /// (the config lost that destination); returns how many.
    pub fn bury_unknown(&self, known: &[&str]) -> Result<usize, OutboxError> {
        let conn = self.work_conn();
        let destinations: Vec<String> = {
            let mut stmt = conn
                .prepare("SELECT DISTINCT destination FROM deliveries WHERE state IN ('pending', 'digest')")
                .map_err(self.err("preparing destinations"))?;
            let rows = stmt
                .query_map([], |row| row.get(0))
                .map_err(self.err("querying destinations"))?;
            rows.collect::<Result<_, _>>()
                .map_err(self.err("reading destinations"))?
        };
        let mut n = 0;
        for d in destinations.iter().filter(|d| !known.contains(&d.as_str())) {
            n += conn
                .execute(
                    "UPDATE deliveries SET state = 'dead', last_error = ?2, updated_ms = ?3 WHERE state IN ('pending', 'digest') AND destination = ?1",
                    params![d, format!("destination {d} is not configured"), now_ms()],
                )
                .map_err(self.err("burying deliveries"))?;
        }
        Ok(n)
    }

    /// Deletes `sent` and `digested` rows older than `retain`; returns how many.
    pub fn prune(&self, retain: Duration) -> Result<usize, OutboxError> {
        let cutoff = now_ms() - retain.as_millis() as i64;
        self.work_conn()
            .execute(
                "DELETE FROM deliveries WHERE state IN ('sent', 'digested') AND updated_ms < ?1",
                params![cutoff],
            )
            .map_err(self.err("pruning"))
    }

    /// The stored row for (dedup key, destination): state and attempts (for tests and
    /// diagnostics).
    pub fn state_of(
        &self,
        dedup_key: &str,
        destination: &str,
    ) -> Result<Option<(String, u32)>, OutboxError> {
        self.work_conn()
            .query_row(
                "SELECT state, attempts FROM deliveries WHERE dedup_key = ?1 AND destination = ?2",
                params![dedup_key, destination],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()
            .map_err(self.err("reading a row"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample_alert;
    use std::collections::HashSet;
    use trailwatch_alert::Severity;

    fn open() -> (tempfile::TempDir, Outbox) {
        let dir = tempfile::tempdir().unwrap();
        let outbox = Outbox::open(&dir.path().join("sub/outbox.sqlite")).unwrap();
        (dir, outbox)
    }

    #[test]
    fn enqueue_is_idempotent_per_key_and_destination() {
        let (_d, ob) = open();
        let a = sample_alert("r", Severity::High, "k1");
        let targets = vec![
            ("x".to_owned(), Schedule::Now),
            ("y".to_owned(), Schedule::Now),
        ];
        assert_eq!(ob.enqueue(&[(&a, targets.clone())]).unwrap(), 2);
        assert_eq!(ob.enqueue(&[(&a, targets.clone())]).unwrap(), 0);
        let due = ob.due(None, now_ms(), 10, &HashSet::new()).unwrap();
        assert_eq!(due.len(), 2);
        assert_eq!(due[0].delivery_id, delivery_id("k1", &due[0].destination));
        // Still idempotent after it was sent.
        ob.mark_sent(due[0].id).unwrap();
        assert_eq!(ob.enqueue(&[(&a, targets)]).unwrap(), 0);
        assert_eq!(ob.counts().unwrap().sent, 1);
        assert_eq!(ob.counts().unwrap().pending, 1);
    }

    #[test]
    fn retry_scheduling_and_dead_letters() {
        let (_d, ob) = open();
        let a = sample_alert("r", Severity::High, "k1");
        ob.enqueue(&[(&a, vec![("x".to_owned(), Schedule::Now)])])
            .unwrap();
        let d = ob
            .due(None, now_ms(), 10, &HashSet::new())
            .unwrap()
            .remove(0);
        ob.mark_retry(d.id, now_ms() + 60_000, "HTTP 500").unwrap();
        assert!(
            ob.due(None, now_ms(), 10, &HashSet::new())
                .unwrap()
                .is_empty()
        );
        assert!(ob.next_due_ms().unwrap().unwrap() > now_ms() + 50_000);
        let later = ob
            .due(None, now_ms() + 61_000, 10, &HashSet::new())
            .unwrap();
        assert_eq!(later[0].attempts, 1);
        ob.mark_dead(d.id, "HTTP 404: no_service").unwrap();
        let dead = ob.dead_letters().unwrap();
        assert_eq!(dead.len(), 1);
        assert_eq!(dead[0].attempts, 2);
        assert_eq!(dead[0].last_error, "HTTP 404: no_service");
        assert_eq!(dead[0].title, a.title);
        assert_eq!(
            ob.retry_dead(&RetrySelector::Destination("nope".into()))
                .unwrap(),
            0
        );
        assert_eq!(ob.retry_dead(&RetrySelector::Ids(vec![d.id])).unwrap(), 1);
        let again = ob.due(None, now_ms(), 10, &HashSet::new()).unwrap();
        assert_eq!(again[0].attempts, 0);
        assert!(ob.dead_letters().unwrap().is_empty());
    }

    #[test]
    fn due_skips_in_flight_rows() {
        let (_d, ob) = open();
        for i in 0..5 {
            let a = sample_alert("r", Severity::Low, &format!("k{i}"));
            ob.enqueue(&[(&a, vec![("x".to_owned(), Schedule::Now)])])
                .unwrap();
        }
        let all = ob.due(None, now_ms(), 3, &HashSet::new()).unwrap();
        assert_eq!(all.len(), 3);
        let busy: HashSet<i64> = all.iter().map(|d| d.id).collect();
        let rest = ob.due(None, now_ms(), 3, &busy).unwrap();
        assert_eq!(rest.len(), 2);
        assert!(rest.iter().all(|d| !busy.contains(&d.id)));
    }

    #[test]
    fn digests_close_into_one_delivery() {
        let (_d, ob) = open();
        let start = now_ms() - 120_000;
        for i in 0..3 {
            let a = sample_alert("r", Severity::Low, &format!("k{i}"));
            ob.enqueue(&[(
                &a,
                vec![(
                    "x".to_owned(),
                    Schedule::Digest {
                        start_ms: start,
                        len_ms: 60_000,
                    },
                )],
            )])
            .unwrap();
        }
        assert!(
            ob.due(None, now_ms(), 10, &HashSet::new())
                .unwrap()
                .is_empty()
        );
        let made = ob
            .close_digests(now_ms(), |dest, window, len, alerts| {
                crate::digest::combine(dest, window, (len / 60_000) as u32, &alerts)
            })
            .unwrap();
        assert_eq!(made, 1);
        let due = ob.due(None, now_ms(), 10, &HashSet::new()).unwrap();
        assert_eq!(due.len(), 1);
        assert!(due[0].alert.title.starts_with("3 alerts"));
        assert_eq!(ob.counts().unwrap().digested, 3);
        // Closing again changes nothing.
        assert_eq!(
            ob.close_digests(now_ms(), |d, w, _, a| crate::digest::combine(d, w, 1, &a))
                .unwrap(),
            0
        );
    }

    #[test]
    fn prune_keeps_recent_sent_rows() {
        let (_d, ob) = open();
        let a = sample_alert("r", Severity::Low, "k");
        ob.enqueue(&[(&a, vec![("x".to_owned(), Schedule::Now)])])
            .unwrap();
        let d = ob
            .due(None, now_ms(), 1, &HashSet::new())
            .unwrap()
            .remove(0);
        ob.mark_sent(d.id).unwrap();
        assert_eq!(ob.prune(Duration::from_secs(3600)).unwrap(), 0);
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(ob.prune(Duration::ZERO).unwrap(), 1);
    }
}

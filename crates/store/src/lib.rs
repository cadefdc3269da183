//! Durable local state that sits beside the pipeline, not in it.
//!
//! Two things survive a restart here:
//! - **inputs**: which files (or objects) were fully processed, so a restart neither
//!   repeats nor misses one;
//! - **seen events**: the CloudTrail `eventID`s that already produced a rule match, so the
//!   same event delivered twice (CloudTrail does that, and the fast EventBridge path plus the
//!   S3 file do it by design) alerts once. Entries older than a horizon are pruned.
//!
//! SQLite in WAL mode with `synchronous=FULL`: each call below is one transaction, so a
//! kill -9 leaves either the whole change or none of it.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};

mod sources;
pub use sources::{Delivery, SourceState};

/// An error from the state store, naming the database file.
#[derive(Debug, thiserror::Error)]
#[error("state store {path}: {source}")]
pub struct StoreError {
    path: PathBuf,
    #[source]
    source: rusqlite::Error,
}

/// How a processed input is identified: its origin plus size and modification time, so a
/// file rewritten in place counts as new.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputStamp {
    /// The path or URI.
    pub origin: String,
    /// Size in bytes.
    pub size: u64,
    /// Modification time in nanoseconds since the epoch (0 when unknown).
    pub modified_ns: i64,
}

/// The state store. One per state directory; not shared between processes.
pub struct Store {
    conn: Connection,
    path: PathBuf,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS inputs (
    origin      TEXT PRIMARY KEY,
    size        INTEGER NOT NULL,
    modified_ns INTEGER NOT NULL,
    done_at     TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS seen_events (
    event_id   TEXT PRIMARY KEY,
    event_time TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS seen_events_time ON seen_events(event_time);
";

/// Opens (creating if needed) a SQLite database for crash-safe state: WAL, `synchronous =
/// FULL` (a committed transaction survives a power cut), then `schema`. `busy` makes a
/// writer wait that long for another process's lock instead of failing at once.
pub fn open_durable(
    path: &Path,
    schema: &str,
    busy: Option<std::time::Duration>,
) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    if let Some(wait) = busy {
        conn.busy_timeout(wait)?;
    }
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.execute_batch(schema)?;
    Ok(conn)
}

impl Store {
    /// Opens (creating if needed) the store at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Store, StoreError> {
        let path = path.as_ref().to_path_buf();
        let wrap = |source| StoreError {
            path: path.clone(),
            source,
        };
        let conn = open_durable(&path, SCHEMA, None).map_err(wrap)?;
        Ok(Store { conn, path })
    }

    fn err(&self, source: rusqlite::Error) -> StoreError {
        StoreError {
            path: self.path.clone(),
            source,
        }
    }

    /// True when this exact input (same size and modification time) was processed before.
    pub fn input_done(&self, stamp: &InputStamp) -> Result<bool, StoreError> {
        let row: Option<(i64, i64)> = self
            .conn
            .query_row(
                "SELECT size, modified_ns FROM inputs WHERE origin = ?1",
                params![stamp.origin],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(|e| self.err(e))?;
        Ok(row == Some((stamp.size as i64, stamp.modified_ns)))
    }

    /// Records an input as fully processed, together with the ids of the events in it that
    /// matched a rule. One transaction: after a crash either both are recorded or neither.
    pub fn commit_input(
        &mut self,
        stamp: &InputStamp,
        matched_events: &[(String, DateTime<Utc>)],
    ) -> Result<(), StoreError> {
        let path = self.path.clone();
        let wrap = |source| StoreError {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(wrap)?;
        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO seen_events(event_id, event_time) VALUES (?1, ?2)",
                )
                .map_err(wrap)?;
            for (id, time) in matched_events {
                insert
                    .execute(params![id, time.to_rfc3339()])
                    .map_err(wrap)?;
            }
        }
        tx.execute(
            "INSERT INTO inputs(origin, size, modified_ns, done_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT(origin) DO UPDATE SET size = ?2, modified_ns = ?3, done_at = ?4",
            params![
                stamp.origin,
                stamp.size as i64,
                stamp.modified_ns,
                Utc::now().to_rfc3339()
            ],
        )
        .map_err(wrap)?;
        tx.commit().map_err(wrap)
    }

    /// True when an event with this id already matched a rule before.
    pub fn event_seen(&self, event_id: &str) -> Result<bool, StoreError> {
        self.conn
            .query_row(
                "SELECT 1 FROM seen_events WHERE event_id = ?1",
                params![event_id],
                |_| Ok(()),
            )
            .optional()
            .map(|row| row.is_some())
            .map_err(|e| self.err(e))
    }

    /// Forgets seen events whose event time is before `cutoff`. Returns how many went.
    pub fn prune_seen(&mut self, cutoff: DateTime<Utc>) -> Result<usize, StoreError> {
        self.conn
            .execute(
                "DELETE FROM seen_events WHERE event_time < ?1",
                params![cutoff.to_rfc3339()],
            )
            .map_err(|e| self.err(e))
    }

    /// The event time of the newest seen event, if any.
    pub fn newest_event_time(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let text: Option<String> = self
            .conn
            .query_row("SELECT MAX(event_time) FROM seen_events", [], |r| r.get(0))
            .map_err(|e| self.err(e))?;
        Ok(text
            .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
            .map(|t| t.with_timezone(&Utc)))
    }

    /// How many inputs are recorded as processed.
    pub fn inputs_done(&self) -> Result<u64, StoreError> {
        self.conn
            .query_row("SELECT COUNT(*) FROM inputs", [], |r| r.get::<_, i64>(0))
            .map(|n| n as u64)
            .map_err(|e| self.err(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn stamp(origin: &str, size: u64) -> InputStamp {
        InputStamp {
            origin: origin.into(),
            size,
            modified_ns: 7,
        }
    }

    #[test]
    fn input_and_events_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("state.sqlite");
        let t = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        {
            let mut store = Store::open(&db).unwrap();
            assert!(!store.input_done(&stamp("a.json.gz", 10)).unwrap());
            store
                .commit_input(&stamp("a.json.gz", 10), &[("ev-1".into(), t)])
                .unwrap();
        }
        let store = Store::open(&db).unwrap();
        assert!(store.input_done(&stamp("a.json.gz", 10)).unwrap());
        // The same path rewritten with another size is a new input.
        assert!(!store.input_done(&stamp("a.json.gz", 11)).unwrap());
        assert!(store.event_seen("ev-1").unwrap());
        assert!(!store.event_seen("ev-2").unwrap());
        assert_eq!(store.inputs_done().unwrap(), 1);
    }

    #[test]
    fn prune_forgets_only_old_events() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path().join("s.sqlite")).unwrap();
        let old = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let new = Utc.with_ymd_and_hms(2026, 1, 3, 0, 0, 0).unwrap();
        store
            .commit_input(&stamp("f", 1), &[("old".into(), old), ("new".into(), new)])
            .unwrap();
        let cutoff = Utc.with_ymd_and_hms(2026, 1, 2, 0, 0, 0).unwrap();
        assert_eq!(store.prune_seen(cutoff).unwrap(), 1);
        assert!(!store.event_seen("old").unwrap());
        assert!(store.event_seen("new").unwrap());
        assert_eq!(store.newest_event_time().unwrap(), Some(new));
    }

    #[test]
    fn error_names_the_database_file() {
        let dir = tempfile::tempdir().unwrap();
        // A directory cannot be opened as a database file.
        let err = match Store::open(dir.path()) {
            Err(e) => e,
            Ok(_) => panic!("opening a directory as a database should fail"),
        };
        assert!(err.to_string().contains(&dir.path().display().to_string()));
    }
}

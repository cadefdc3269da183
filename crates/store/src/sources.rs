//! State kept for the live AWS sources (`trailwatch-sources`): S3 listing checkpoints,
//! the event ids already handed to the pipeline (dedup across the EventBridge path and the
//! S3 files), and the last delivery seen per account and region (the dead-man check).
//!
//! These tables sit in the same SQLite file as [`Store`]'s; [`SourceState::open`] creates
//! them. Each method is one transaction.

use std::path::Path;

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};

use crate::{Store, StoreError};

const SOURCES_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS s3_checkpoints (
    prefix     TEXT PRIMARY KEY,
    last_key   TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS delivered_events (
    event_id   TEXT PRIMARY KEY,
    event_time TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS delivered_events_time ON delivered_events(event_time);
CREATE TABLE IF NOT EXISTS deliveries (
    account    TEXT NOT NULL,
    region     TEXT NOT NULL,
    last_at    TEXT NOT NULL,
    last_key   TEXT NOT NULL,
    PRIMARY KEY (account, region)
);
";

/// One account/region's most recent log-file delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The account id.
    pub account: String,
    /// The region.
    pub region: String,
    /// When the newest file was seen (its S3 event time or listing time).
    pub last_at: DateTime<Utc>,
    /// The newest file's key.
    pub last_key: String,
}

/// The store, opened with the sources' tables. Wraps a [`Store`], which stays reachable.
pub struct SourceState {
    store: Store,
}

fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

impl SourceState {
    /// Opens (creating if needed) the store at `path`, with the sources' tables.
    pub fn open(path: impl AsRef<Path>) -> Result<SourceState, StoreError> {
        let store = Store::open(path)?;
        store
            .conn
            .execute_batch(SOURCES_SCHEMA)
            .map_err(|e| store.err(e))?;
        Ok(SourceState { store })
    }

    /// The underlying store (processed inputs, matched events).
    pub fn store(&mut self) -> &mut Store {
        &mut self.store
    }

    /// The last key fully processed under an S3 listing prefix (the `start-after` value).
    pub fn checkpoint(&self, prefix: &str) -> Result<Option<String>, StoreError> {
        self.store
            .conn
            .query_row(
                "SELECT last_key FROM s3_checkpoints WHERE prefix = ?1",
                params![prefix],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.store.err(e))
    }

    /// Moves a prefix's checkpoint forward to `last_key`. A key that sorts before the stored
    /// one is ignored, so a checkpoint never goes backwards.
    pub fn set_checkpoint(&mut self, prefix: &str, last_key: &str) -> Result<(), StoreError> {
        self.store
            .conn
            .execute(
                "INSERT INTO s3_checkpoints(prefix, last_key, updated_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT(prefix) DO UPDATE SET last_key = ?2, updated_at = ?3
                 WHERE ?2 > s3_checkpoints.last_key",
                params![prefix, last_key, Utc::now().to_rfc3339()],
            )
            .map(|_| ())
            .map_err(|e| self.store.err(e))
    }

    /// All checkpoints, by prefix.
    pub fn checkpoints(&self) -> Result<Vec<(String, String)>, StoreError> {
        let mut stmt = self
            .store
            .conn
            .prepare_cached("SELECT prefix, last_key FROM s3_checkpoints ORDER BY prefix")
            .map_err(|e| self.store.err(e))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(|e| self.store.err(e))?;
        rows.collect::<Result<_, _>>()
            .map_err(|e| self.store.err(e))
    }

    /// For each id, whether it was already handed to the pipeline.
    pub fn delivered(&self, event_ids: &[&str]) -> Result<Vec<bool>, StoreError> {
        let mut stmt = self
            .store
            .conn
            .prepare_cached("SELECT 1 FROM delivered_events WHERE event_id = ?1")
            .map_err(|e| self.store.err(e))?;
        let mut out = Vec::with_capacity(event_ids.len());
        for id in event_ids {
            let hit = stmt
                .query_row(params![id], |_| Ok(()))
                .optional()
                .map_err(|e| self.store.err(e))?;
            out.push(hit.is_some());
        }
        Ok(out)
    }

    /// Records event ids as handed to the pipeline (one transaction).
    pub fn mark_delivered(&mut self, events: &[(String, DateTime<Utc>)]) -> Result<(), StoreError> {
        let path = self.store.path.clone();
        let wrap = |source| StoreError {
            path: path.clone(),
            source,
        };
        let tx = self.store.conn.transaction().map_err(wrap)?;
        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO delivered_events(event_id, event_time) VALUES (?1, ?2)",
                )
                .map_err(wrap)?;
            for (id, time) in events {
                insert
                    .execute(params![id, time.to_rfc3339()])
                    .map_err(wrap)?;
            }
        }
        tx.commit().map_err(wrap)
    }

    /// Forgets delivered event ids whose event time is before `cutoff` (the dedup horizon).
    pub fn prune_delivered(&mut self, cutoff: DateTime<Utc>) -> Result<usize, StoreError> {
        self.store
            .conn
            .execute(
                "DELETE FROM delivered_events WHERE event_time < ?1",
                params![cutoff.to_rfc3339()],
            )
            .map_err(|e| self.store.err(e))
    }

    /// Notes that `account`/`region` delivered `key` at `at` (kept only when newer).
    pub fn record_delivery(
        &mut self,
        account: &str,
        region: &str,
        at: DateTime<Utc>,
        key: &str,
    ) -> Result<(), StoreError> {
        self.store
            .conn
            .execute(
                "INSERT INTO deliveries(account, region, last_at, last_key) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(account, region) DO UPDATE SET last_at = ?3, last_key = ?4
                 WHERE ?3 > deliveries.last_at",
                params![account, region, at.to_rfc3339(), key],
            )
            .map(|_| ())
            .map_err(|e| self.store.err(e))
    }

    /// Every account/region that ever delivered, with its newest delivery.
    pub fn deliveries(&self) -> Result<Vec<Delivery>, StoreError> {
        let mut stmt = self
            .store
            .conn
            .prepare_cached(
                "SELECT account, region, last_at, last_key FROM deliveries ORDER BY account, region",
            )
            .map_err(|e| self.store.err(e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                ))
            })
            .map_err(|e| self.store.err(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (account, region, at, last_key) = row.map_err(|e| self.store.err(e))?;
            if let Some(last_at) = parse_time(&at) {
                out.push(Delivery {
                    account,
                    region,
                    last_at,
                    last_key,
                });
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn checkpoints_only_move_forward_and_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("s.sqlite");
        {
            let mut st = SourceState::open(&db).unwrap();
            assert_eq!(st.checkpoint("p/").unwrap(), None);
            st.set_checkpoint("p/", "p/b").unwrap();
            st.set_checkpoint("p/", "p/a").unwrap();
        }
        let mut st = SourceState::open(&db).unwrap();
        assert_eq!(st.checkpoint("p/").unwrap().as_deref(), Some("p/b"));
        st.set_checkpoint("p/", "p/c").unwrap();
        assert_eq!(
            st.checkpoints().unwrap(),
            vec![("p/".to_owned(), "p/c".to_owned())]
        );
        // The original tables still work on the same file.
        assert_eq!(st.store().inputs_done().unwrap(), 0);
    }

    #[test]
    fn delivered_ids_and_pruning() {
        let dir = tempfile::tempdir().unwrap();
        let mut st = SourceState::open(dir.path().join("s.sqlite")).unwrap();
        let old = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let new = Utc.with_ymd_and_hms(2026, 1, 3, 0, 0, 0).unwrap();
        st.mark_delivered(&[("a".into(), old), ("b".into(), new)])
            .unwrap();
        assert_eq!(st.delivered(&["a", "b", "c"]).unwrap(), [true, true, false]);
        let cutoff = Utc.with_ymd_and_hms(2026, 1, 2, 0, 0, 0).unwrap();
        assert_eq!(st.prune_delivered(cutoff).unwrap(), 1);
        assert_eq!(st.delivered(&["a", "b"]).unwrap(), [false, true]);
    }

    #[test]
    fn deliveries_keep_the_newest() {
        let dir = tempfile::tempdir().unwrap();
        let mut st = SourceState::open(dir.path().join("s.sqlite")).unwrap();
        let t1 = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let t2 = Utc.with_ymd_and_hms(2026, 1, 1, 1, 0, 0).unwrap();
        st.record_delivery("111", "us-east-1", t2, "k2").unwrap();
        st.record_delivery("111", "us-east-1", t1, "k1").unwrap();
        st.record_delivery("222", "eu-west-1", t1, "k3").unwrap();
        let d = st.deliveries().unwrap();
        assert_eq!(d.len(), 2);
        assert_eq!(d[0].last_at, t2);
        assert_eq!(d[0].last_key, "k2");
        assert_eq!(d[1].account, "222");
    }
}

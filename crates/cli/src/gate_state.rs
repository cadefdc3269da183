//! The rule gate's windows (thresholds, dedup) on disk, so a restart of `trailwatch run` or
//! `watch` continues a half-full threshold window and does not re-alert inside a dedup
//! window.
//!
//! Reads and writes go to an in-memory [`MemoryState`]; changed keys are remembered and
//! [`StateStore::commit`] writes them in one transaction. The binary commits after the alerts
//! of the same batch are durable, so a crash in between redoes the batch from the older
//! state: every event is counted once.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use rusqlite::{Connection, params};
use trailwatch_rules::{Entry, Expiry, MemoryState, StateError, StateStore};

/// The state file could not be opened or read.
#[derive(Debug, thiserror::Error)]
#[error("rule state {path}: {source}")]
pub struct GateStateError {
    path: PathBuf,
    #[source]
    source: rusqlite::Error,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS gate_state (
    key        TEXT PRIMARY KEY,
    entry      TEXT NOT NULL,
    expiry     TEXT NOT NULL
);
";

/// A [`StateStore`] kept in a SQLite file.
pub struct DurableGateState {
    memory: MemoryState,
    /// Keys changed since the last commit: the new value, or `None` when removed.
    dirty: HashMap<String, Option<(Entry, Expiry)>>,
    conn: Connection,
    path: PathBuf,
}

impl std::fmt::Debug for DurableGateState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DurableGateState")
            .field("path", &self.path)
            .field("entries", &self.memory.len())
            .field("dirty", &self.dirty.len())
            .finish()
    }
}

impl DurableGateState {
    /// Opens (creating if needed) the state at `path` and loads every entry. Entries that no
    /// longer deserialize (written by another version) are dropped, and their number comes
    /// back for the caller to log: a window lost is a missed count, not a wrong alert.
    pub fn open(path: impl AsRef<Path>) -> Result<(DurableGateState, u64), GateStateError> {
        let path = path.as_ref().to_path_buf();
        let wrap = |source| GateStateError {
            path: path.clone(),
            source,
        };
        let conn = trailwatch_store::open_durable(&path, SCHEMA, None).map_err(wrap)?;
        let mut memory = MemoryState::new();
        let mut unreadable = 0;
        {
            let mut rows = conn
                .prepare("SELECT key, entry, expiry FROM gate_state")
                .map_err(wrap)?;
            let all = rows
                .query_map([], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                    ))
                })
                .map_err(wrap)?;
            for row in all {
                let (key, entry, expiry) = row.map_err(wrap)?;
                match (
                    serde_json::from_str::<Entry>(&entry),
                    serde_json::from_str::<Expiry>(&expiry),
                ) {
                    (Ok(entry), Ok(expiry)) => memory.put(&key, entry, expiry),
                    _ => unreadable += 1,
                }
            }
        }
        Ok((
            DurableGateState {
                memory,
                dirty: HashMap::new(),
                conn,
                path,
            },
            unreadable,
        ))
    }

    /// Changes not yet committed.
    pub fn uncommitted(&self) -> usize {
        self.dirty.len()
    }
}

impl StateStore for DurableGateState {
    fn get(&self, key: &str) -> Option<Entry> {
        self.memory.get(key)
    }

    fn put(&mut self, key: &str, entry: Entry, expiry: Expiry) {
        self.dirty
            .insert(key.to_owned(), Some((entry.clone(), expiry)));
        self.memory.put(key, entry, expiry);
    }

    fn remove(&mut self, key: &str) -> Option<Entry> {
        self.dirty.insert(key.to_owned(), None);
        self.memory.remove(key)
    }

    fn take_expired(
        &mut self,
        watermark: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Vec<(String, Entry)> {
        let out = self.memory.take_expired(watermark, now);
        for (key, _) in &out {
            self.dirty.insert(key.clone(), None);
        }
        out
    }

    fn drain(&mut self) -> Vec<(String, Entry)> {
        let out = self.memory.drain();
        for (key, _) in &out {
            self.dirty.insert(key.clone(), None);
        }
        out
    }

    fn len(&self) -> usize {
        self.memory.len()
    }

    fn commit(&mut self) -> Result<(), StateError> {
        if self.dirty.is_empty() {
            return Ok(());
        }
        let fail = |e: &dyn std::fmt::Display| StateError(format!("{}: {e}", self.path.display()));
        let tx = self.conn.transaction().map_err(|e| fail(&e))?;
        {
            let mut upsert = tx
                .prepare_cached(
                    "INSERT INTO gate_state(key, entry, expiry) VALUES (?1, ?2, ?3)
                     ON CONFLICT(key) DO UPDATE SET entry = ?2, expiry = ?3",
                )
                .map_err(|e| fail(&e))?;
            let mut delete = tx
                .prepare_cached("DELETE FROM gate_state WHERE key = ?1")
                .map_err(|e| fail(&e))?;
            for (key, change) in &self.dirty {
                match change {
                    Some((entry, expiry)) => {
                        let entry = serde_json::to_string(entry).map_err(|e| fail(&e))?;
                        let expiry = serde_json::to_string(expiry).map_err(|e| fail(&e))?;
                        upsert
                            .execute(params![key, entry, expiry])
                            .map_err(|e| fail(&e))?;
                    }
                    None => {
                        delete.execute(params![key]).map_err(|e| fail(&e))?;
                    }
                }
            }
        }
        tx.commit().map_err(|e| fail(&e))?;
        self.dirty.clear();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::<Utc>::from_timestamp(1_700_000_000 + s, 0).unwrap_or_default()
    }

    fn expiry(s: i64) -> Expiry {
        Expiry {
            event_time: t(s),
            wall: t(s + 1_000_000),
        }
    }

    fn first_entry() -> Entry {
        Entry::Threshold(Default::default())
    }

    #[test]
    fn committed_changes_survive_a_reopen_and_uncommitted_ones_do_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gate.sqlite");
        let entry = first_entry();
        {
            let (mut s, unreadable) = DurableGateState::open(&path).unwrap();
            assert_eq!(unreadable, 0);
            s.put("a", entry.clone(), expiry(10));
            s.put("b", entry.clone(), expiry(20));
            s.commit().unwrap();
            assert_eq!(s.uncommitted(), 0);
            s.remove("a");
            s.put("c", entry.clone(), expiry(30));
            // Not committed: as if the process died here.
        }
        let (mut s, _) = DurableGateState::open(&path).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s.get("a"), Some(entry.clone()));
        assert!(s.get("c").is_none());
        // Expiry is kept: "a" (10) goes before "b" (20).
        let gone: Vec<String> = s
            .take_expired(t(15), t(15))
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(gone, ["a"]);
        s.commit().unwrap();
        let (s, _) = DurableGateState::open(&path).unwrap();
        assert_eq!(s.len(), 1);
        assert!(s.get("b").is_some());
    }

    #[test]
    fn unreadable_rows_are_counted_not_fatal() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gate.sqlite");
        {
            let (mut s, _) = DurableGateState::open(&path).unwrap();
            s.put("a", first_entry(), expiry(10));
            s.commit().unwrap();
            s.conn
                .execute(
                    "INSERT INTO gate_state VALUES ('old', '{\"NoSuchKind\":1}', 'x')",
                    [],
                )
                .unwrap();
        }
        let (s, unreadable) = DurableGateState::open(&path).unwrap();
        assert_eq!(unreadable, 1);
        assert_eq!(s.len(), 1);
    }
}

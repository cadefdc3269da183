//! Where stateful rules keep their windows: the [`StateStore`] trait and the in-memory
//! [`MemoryState`]. A shared store (for several processes) implements the same trait.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::window::{DedupEntry, ThresholdWindow};

/// One stored value (serializable, so a shared store can keep it as JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Entry {
    /// A threshold group's event times.
    Threshold(ThresholdWindow),
    /// A dedup key's window.
    Dedup(Box<DedupEntry>),
}

/// When an entry may be dropped: whichever comes first of an event-time deadline (compared
/// with the newest event time seen) and a wall-clock deadline (compared with the clock).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Expiry {
    /// Event-time deadline.
    pub event_time: DateTime<Utc>,
    /// Wall-clock deadline.
    pub wall: DateTime<Utc>,
}

/// Keyed storage for windows. Keys are opaque strings made by the gate.
pub trait StateStore: Send {
    /// The entry under `key`.
    fn get(&self, key: &str) -> Option<Entry>;
    /// Stores an entry with its expiry, replacing any previous one.
    fn put(&mut self, key: &str, entry: Entry, expiry: Expiry);
    /// Removes and returns an entry.
    fn remove(&mut self, key: &str) -> Option<Entry>;
    /// Removes and returns every entry whose event-time deadline is before `watermark` or
    /// whose wall-clock deadline is before `now`, sorted by key.
    fn take_expired(
        &mut self,
        watermark: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Vec<(String, Entry)>;
    /// Removes and returns everything (end of input), sorted by key.
    fn drain(&mut self) -> Vec<(String, Entry)>;
    /// How many entries are held.
    fn len(&self) -> usize;
    /// Whether no entries are held.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Makes every change since the last commit durable, at once (a store on disk writes
    /// them in one transaction); in memory there is nothing to do.
    fn commit(&mut self) -> Result<(), StateError> {
        Ok(())
    }
}

/// A durable store could not commit its changes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("rule state: {0}")]
pub struct StateError(pub String);

/// A [`StateStore`] in a hash map.
#[derive(Debug, Default)]
pub struct MemoryState {
    entries: HashMap<String, (Entry, Expiry)>,
    /// The earliest deadline held, so most calls to `take_expired` do no scan.
    earliest: Option<Expiry>,
}

impl MemoryState {
    /// An empty store.
    pub fn new() -> MemoryState {
        MemoryState::default()
    }
}

impl StateStore for MemoryState {
    fn get(&self, key: &str) -> Option<Entry> {
        self.entries.get(key).map(|(e, _)| e.clone())
    }

    fn put(&mut self, key: &str, entry: Entry, expiry: Expiry) {
        self.earliest = Some(match self.earliest {
            Some(e) => Expiry {
                event_time: e.event_time.min(expiry.event_time),
                wall: e.wall.min(expiry.wall),
            },
            None => expiry,
        });
        self.entries.insert(key.to_owned(), (entry, expiry));
    }

    fn remove(&mut self, key: &str) -> Option<Entry> {
        self.entries.remove(key).map(|(e, _)| e)
    }

    fn take_expired(
        &mut self,
        watermark: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Vec<(String, Entry)> {
        match self.earliest {
            Some(e) if e.event_time < watermark || e.wall < now => {}
            _ => return Vec::new(),
        }
        let keys: Vec<String> = self
            .entries
            .iter()
            .filter(|(_, (_, x))| x.event_time < watermark || x.wall < now)
            .map(|(k, _)| k.clone())
            .collect();
        let mut out: Vec<(String, Entry)> = keys
            .into_iter()
            .filter_map(|k| self.entries.remove(&k).map(|(e, _)| (k, e)))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        self.earliest = self
            .entries
            .values()
            .map(|(_, x)| *x)
            .reduce(|a, b| Expiry {
                event_time: a.event_time.min(b.event_time),
                wall: a.wall.min(b.wall),
            });
        out
    }

    fn drain(&mut self) -> Vec<(String, Entry)> {
        let mut out: Vec<(String, Entry)> =
            self.entries.drain().map(|(k, (e, _))| (k, e)).collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        self.earliest = None;
        out
    }

    fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_by_event_time_or_wall_clock() {
        let t = |s: i64| DateTime::<Utc>::from_timestamp(1_700_000_000 + s, 0).unwrap_or_default();
        let mut m = MemoryState::new();
        let e = Entry::Threshold(ThresholdWindow::default());
        m.put(
            "a",
            e.clone(),
            Expiry {
                event_time: t(10),
                wall: t(1000),
            },
        );
        m.put(
            "b",
            e.clone(),
            Expiry {
                event_time: t(500),
                wall: t(20),
            },
        );
        m.put(
            "c",
            e,
            Expiry {
                event_time: t(500),
                wall: t(1000),
            },
        );
        assert!(m.take_expired(t(5), t(5)).is_empty());
        let gone: Vec<String> = m
            .take_expired(t(11), t(21))
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(gone, ["a", "b"]);
        assert_eq!(m.len(), 1);
        assert!(m.get("c").is_some());
        assert_eq!(m.drain().len(), 1);
        assert!(m.is_empty());
    }
}

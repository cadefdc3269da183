//! Shared helpers for the integration tests: moto clients, a recording pipeline, the corpus.
//!
//! testkit provides `MotoServer` and the AWS-side fixtures (`trailwatch_testkit::aws`); what is
//! specific to the sources (a recording pipeline, a deliverer) is here.

#![allow(dead_code, unused_imports)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use trailwatch_event::Event;
use trailwatch_sources::{HandleOutcome, Pipeline, PipelineError};
use trailwatch_testkit::MotoServer;
pub use trailwatch_testkit::aws::*;

/// The settings the sources use for moto (path-style S3).
pub fn aws_settings(moto: &MotoServer) -> trailwatch_sources::config::AwsSettings {
    trailwatch_sources::config::AwsSettings {
        region: Some("us-east-1".into()),
        endpoint_url: Some(moto.endpoint_url()),
        force_path_style: Some(true),
        profile: None,
    }
}

/// Records every event id handed over; can be told to fail or to be slow.
#[derive(Default)]
pub struct Recording {
    pub ids: Mutex<HashMap<String, u64>>,
    pub batches: AtomicU64,
    pub fail: AtomicBool,
    pub delay_ms: AtomicU64,
}

impl Recording {
    pub fn count(&self) -> usize {
        self.ids.lock().unwrap().len()
    }
    pub fn duplicates(&self) -> u64 {
        self.ids.lock().unwrap().values().map(|n| n - 1).sum()
    }
    pub fn has_all(&self, expected: &[String]) -> bool {
        let ids = self.ids.lock().unwrap();
        expected.iter().all(|id| ids.contains_key(id))
    }
}

impl Pipeline for Recording {
    fn handle(&self, events: Vec<Event>, _origin: &str) -> Result<HandleOutcome, PipelineError> {
        let delay = self.delay_ms.load(Ordering::SeqCst);
        if delay > 0 {
            std::thread::sleep(Duration::from_millis(delay));
        }
        if self.fail.load(Ordering::SeqCst) {
            return Err(PipelineError::new("test pipeline told to fail"));
        }
        self.batches.fetch_add(1, Ordering::SeqCst);
        let mut ids = self.ids.lock().unwrap();
        for e in events {
            *ids.entry(e.meta().event_id.clone().expect("event id"))
                .or_default() += 1;
        }
        Ok(HandleOutcome::default())
    }
}

/// The event ids in a set of corpus files.
pub fn corpus_ids(files: &[(String, PathBuf)]) -> Vec<String> {
    let mut ids = Vec::new();
    for (_, path) in files {
        let bytes = std::fs::read(path).unwrap();
        let (items, _) =
            trailwatch_event::decode_slice(&bytes, "corpus", &trailwatch_event::Limits::default());
        for item in items {
            if let trailwatch_event::Item::Event(e) = item {
                ids.push(e.meta().event_id.clone().unwrap());
            }
        }
    }
    ids
}

/// A deliverer over a fresh state file in `dir`.
pub fn deliverer(db: &Path, pipeline: Arc<Recording>) -> Arc<trailwatch_sources::Deliverer> {
    let state = Arc::new(Mutex::new(trailwatch_store::SourceState::open(db).unwrap()));
    trailwatch_sources::Deliverer::new(state, pipeline, Duration::from_secs(400 * 86400))
}

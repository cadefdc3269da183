//! `trailwatch scan s3://bucket/prefix`: list the log files of an org-trail (or single-account)
//! prefix with the S3 poller's code, then read each object as a stream on the scan's workers.
//!
//! AWS settings come from the config's `sources.aws` (region, endpoint_url, profile) and the
//! standard credential chain; `AWS_ENDPOINT_URL` also works and implies path-style addressing.

use std::fmt;
use std::io::{self, Read};
use std::sync::Arc;

use anyhow::Context;
use chrono::{DateTime, Utc};
use trailwatch_config::Config;
use trailwatch_event::Limits;
use trailwatch_sources::config::AwsSettings;
use trailwatch_sources::s3_poll::{LogKey, S3Location, scan_objects};
use trailwatch_sources::sqs_s3::{ObjectReader, blocking_read};

use crate::filter::EventFilter;

/// Whether a command-line argument names an S3 location.
pub fn is_s3_url(arg: &std::path::Path) -> bool {
    arg.to_str().is_some_and(|s| s.starts_with("s3://"))
}

/// The runtime and client that S3 inputs read through; shared by every S3 input of a scan.
pub struct S3Access {
    runtime: tokio::runtime::Runtime,
    reader: ObjectReader,
}

impl fmt::Debug for S3Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("S3Access")
    }
}

impl S3Access {
    /// Builds the SDK client from the config's `sources.aws` and the standard chain.
    pub fn new(config: &Config, limits: &Limits) -> anyhow::Result<Arc<S3Access>> {
        let mut settings = match crate::run_cmd::sources_config(config)? {
            Some(sources) => sources.aws,
            None => AwsSettings::default(),
        };
        if settings.endpoint_url.is_none() && std::env::var_os("AWS_ENDPOINT_URL").is_some() {
            // The SDK reads the variable itself; emulators also need path-style addressing.
            settings.force_path_style.get_or_insert(true);
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .thread_name("trailwatch-s3")
            .build()
            .context("cannot start the runtime for S3")?;
        let sdk = runtime.block_on(trailwatch_sources::aws::load(&settings));
        let reader = ObjectReader {
            s3: trailwatch_sources::aws::s3_client(&sdk, &settings),
            limits: limits.clone(),
            batch_events: 1000,
        };
        Ok(Arc::new(S3Access { runtime, reader }))
    }

    /// Every log file under `url` that can hold events the filter accepts, in key order per
    /// account/region.
    pub fn list(
        self: &Arc<Self>,
        url: &str,
        filter: &EventFilter,
        since: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
    ) -> anyhow::Result<Vec<S3Object>> {
        let location = S3Location::parse(url).map_err(|e| anyhow::anyhow!("{url}: {e}"))?;
        // Files are named by delivery time, up to about 15 minutes after their events: list
        // from the day before `since`, and through the day after `until`.
        let from = since.map_or(DateTime::UNIX_EPOCH, |t| t - chrono::Duration::days(1));
        let through = until.map(|t| (t + chrono::Duration::days(1)).date_naive());
        let objects = self
            .runtime
            .block_on(scan_objects(&self.reader.s3, &location, from, through))
            .with_context(|| format!("cannot list {url}"))?;
        Ok(objects
            .into_iter()
            .filter(|o| {
                LogKey::parse(&o.key).is_none_or(|k| filter.accepts_location(&k.account, &k.region))
            })
            .map(|o| S3Object {
                bucket: o.bucket,
                key: o.key,
                size: o.size.unwrap_or(0),
                access: S3Handle(self.clone()),
            })
            .collect())
    }

    fn open(&self, bucket: &str, key: &str) -> io::Result<Box<dyn Read + Send>> {
        let (body, _size) = self
            .runtime
            .block_on(self.reader.open(bucket, key))
            .map_err(io::Error::other)?;
        Ok(Box::new(blocking_read(body, self.runtime.handle().clone())))
    }
}

/// A shared [`S3Access`]; inputs compare by bucket and key only.
#[derive(Debug, Clone)]
pub struct S3Handle(pub Arc<S3Access>);

impl PartialEq for S3Handle {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for S3Handle {}

/// One S3 object to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Object {
    /// The bucket.
    pub bucket: String,
    /// The key.
    pub key: String,
    /// Its size in bytes.
    pub size: u64,
    /// How to read it.
    pub access: S3Handle,
}

impl S3Object {
    /// `s3://bucket/key`.
    pub fn origin(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.key)
    }

    /// Opens the object as a stream (a blocking read; call it off the runtime).
    pub fn open(&self) -> io::Result<Box<dyn Read + Send>> {
        self.access.0.open(&self.bucket, &self.key)
    }
}

//! Polling S3 for CloudTrail log files: for history (`trailwatch scan s3://…`) and for
//! buckets without notifications.
//!
//! The layout is CloudTrail's: `[prefix/]AWSLogs/[o-org/]ACCOUNT/CloudTrail/REGION/YYYY/MM/DD/
//! ACCOUNT_CloudTrail_REGION_YYYYMMDDTHHMMZ_UNIQUE.json.gz`. [`discover`] walks the folders
//! (delimiter listing) to find every account/region prefix. [`ObjectLister`] lists one
//! prefix in key order with `start-after`, which is both the time-range skip (the date folders
//! sort by date, so `start-after = prefix/YYYY/MM/DD/` skips everything before `since`) and
//! the checkpoint: [`S3Poller`] records the last key read per prefix in the store, so a
//! restart neither repeats nor misses a file. Keys within a prefix sort by time, so reading
//! in key order is reading in delivery order.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use tokio_util::sync::CancellationToken;
use trailwatch_store::SourceState;

use crate::config::{S3PollConfig, parse_since};
use crate::dedup::{Deliverer, lock, run_blocking};
use crate::error::{SourceError, sdk_message};
use crate::metrics::SourceMetrics;
use crate::sqs_s3::ObjectReader;

/// `s3://bucket/prefix`, the prefix empty or ending in `/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Location {
    /// The bucket.
    pub bucket: String,
    /// The prefix (empty, or ends with `/`).
    pub prefix: String,
}

impl S3Location {
    /// Parses `s3://bucket[/prefix]`.
    pub fn parse(url: &str) -> Result<S3Location, String> {
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| format!("{url:?} is not an s3:// URL"))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(format!("{url:?} names no bucket"));
        }
        let mut prefix = prefix.to_owned();
        if !prefix.is_empty() && !prefix.ends_with('/') {
            prefix.push('/');
        }
        Ok(S3Location {
            bucket: bucket.to_owned(),
            prefix,
        })
    }
}

/// What a CloudTrail log key says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogKey {
    /// The account id.
    pub account: String,
    /// The region.
    pub region: String,
    /// The date folder.
    pub date: Option<NaiveDate>,
    /// The delivery time in the file name (minute precision).
    pub time: Option<DateTime<Utc>>,
    /// A digest file (`CloudTrail-Digest/`), not a log file.
    pub digest: bool,
    /// The account/region prefix, up to and including `REGION/`.
    pub prefix: String,
}

fn is_account(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

impl LogKey {
    /// Parses a key in CloudTrail's layout; `None` for anything else.
    pub fn parse(key: &str) -> Option<LogKey> {
        let segs: Vec<&str> = key.split('/').collect();
        let at = segs.iter().rposition(|s| *s == "AWSLogs")?;
        let mut i = at + 1;
        if segs.get(i).is_some_and(|s| s.starts_with("o-")) {
            i += 1;
        }
        let account = *segs.get(i).filter(|s| is_account(s))?;
        let kind = *segs.get(i + 1)?;
        let digest = match kind {
            "CloudTrail" => false,
            "CloudTrail-Digest" => true,
            _ => return None,
        };
        let region = *segs.get(i + 2).filter(|s| !s.is_empty())?;
        let prefix = segs[..i + 3].join("/") + "/";
        let date = match (segs.get(i + 3), segs.get(i + 4), segs.get(i + 5)) {
            (Some(y), Some(m), Some(d)) => {
                NaiveDate::parse_from_str(&format!("{y}-{m}-{d}"), "%Y-%m-%d").ok()
            }
            _ => None,
        };
        let time = segs.last().and_then(|name| {
            let stamp = name
                .split('_')
                .find(|p| p.len() == 14 && p.ends_with('Z'))?;
            NaiveDateTime::parse_from_str(stamp, "%Y%m%dT%H%MZ")
                .ok()
                .map(|t| t.and_utc())
        });
        Some(LogKey {
            account: account.to_owned(),
            region: region.to_owned(),
            date,
            time,
            digest,
            prefix,
        })
    }
}

/// One account/region folder: `…/AWSLogs/[o-org/]ACCOUNT/CloudTrail/REGION/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogPrefix {
    /// The bucket.
    pub bucket: String,
    /// The folder, ending in `REGION/`.
    pub prefix: String,
    /// The account id.
    pub account: String,
    /// The region.
    pub region: String,
}

impl LogPrefix {
    /// The name its checkpoint is stored under: `s3://bucket/prefix`.
    pub fn checkpoint_name(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.prefix)
    }
}

/// An object to read, in the order to read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectToRead {
    /// The bucket.
    pub bucket: String,
    /// The key.
    pub key: String,
    /// Its size.
    pub size: Option<u64>,
}

async fn list_folders(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    prefix: &str,
) -> Result<Vec<String>, SourceError> {
    let mut out = Vec::new();
    let mut token = None;
    loop {
        let resp = s3
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .delimiter("/")
            .set_continuation_token(token.take())
            .send()
            .await
            .map_err(|e| SourceError::List {
                bucket: bucket.to_owned(),
                prefix: prefix.to_owned(),
                message: sdk_message(&e),
            })?;
        out.extend(
            resp.common_prefixes()
                .iter()
                .filter_map(|p| p.prefix().map(str::to_owned)),
        );
        match resp.next_continuation_token() {
            Some(t) if resp.is_truncated() == Some(true) => token = Some(t.to_owned()),
            _ => break,
        }
    }
    Ok(out)
}

fn last_segment(prefix: &str) -> &str {
    prefix
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or("")
}

/// Finds every account/region folder under `loc` (which may be the bucket root, a trail
/// prefix, `AWSLogs/`, `AWSLogs/o-org/`, an account or a region folder).
pub async fn discover(
    s3: &aws_sdk_s3::Client,
    loc: &S3Location,
) -> Result<Vec<LogPrefix>, SourceError> {
    let mut found = Vec::new();
    let mut stack = vec![loc.prefix.clone()];
    while let Some(prefix) = stack.pop() {
        let segs: Vec<&str> = prefix.split('/').filter(|s| !s.is_empty()).collect();
        let Some(at) = segs.iter().rposition(|s| *s == "AWSLogs") else {
            if segs.len() > 8 {
                continue;
            }
            for child in list_folders(s3, &loc.bucket, &prefix).await? {
                if last_segment(&child) == "AWSLogs" {
                    stack.push(child);
                }
            }
            continue;
        };
        let rest = &segs[at + 1..];
        let org = rest.first().is_some_and(|s| s.starts_with("o-")) as usize;
        let rest = &rest[org..];
        match rest {
            [] => {
                for child in list_folders(s3, &loc.bucket, &prefix).await? {
                    let seg = last_segment(&child);
                    if (org == 0 && seg.starts_with("o-")) || is_account(seg) {
                        stack.push(child);
                    }
                }
            }
            [account] if is_account(account) => {
                stack.push(format!("{prefix}CloudTrail/"));
            }
            [account, "CloudTrail"] if is_account(account) => {
                for child in list_folders(s3, &loc.bucket, &prefix).await? {
                    let region = last_segment(&child).to_owned();
                    found.push(LogPrefix {
                        bucket: loc.bucket.clone(),
                        prefix: child,
                        account: (*account).to_owned(),
                        region,
                    });
                }
            }
            [account, "CloudTrail", region, ..] if is_account(account) => {
                let cut = segs.len() - rest.len() + 3;
                found.push(LogPrefix {
                    bucket: loc.bucket.clone(),
                    prefix: segs[..cut].join("/") + "/",
                    account: (*account).to_owned(),
                    region: (*region).to_owned(),
                });
            }
            _ => {}
        }
    }
    found.sort_by(|a, b| a.prefix.cmp(&b.prefix));
    found.dedup();
    Ok(found)
}

/// The `start-after` key that skips every date folder before `since`.
pub fn start_after_for(prefix: &str, since: DateTime<Utc>) -> String {
    format!("{prefix}{}/", since.format("%Y/%m/%d"))
}

/// Lists one account/region folder in key order, after a start key, up to a last day.
pub struct ObjectLister {
    s3: aws_sdk_s3::Client,
    bucket: String,
    prefix: String,
    start_after: String,
    until: Option<NaiveDate>,
    token: Option<String>,
    done: bool,
}

impl ObjectLister {
    /// A lister for `prefix` starting after `start_after` (a checkpoint, or
    /// [`start_after_for`]), stopping after the date folder `until` when given.
    pub fn new(
        s3: aws_sdk_s3::Client,
        prefix: &LogPrefix,
        start_after: String,
        until: Option<NaiveDate>,
    ) -> ObjectLister {
        ObjectLister {
            s3,
            bucket: prefix.bucket.clone(),
            prefix: prefix.prefix.clone(),
            start_after,
            until,
            token: None,
            done: false,
        }
    }

    /// The next page of objects (up to 1000), `None` when the listing is over.
    pub async fn next_page(&mut self) -> Result<Option<Vec<ObjectToRead>>, SourceError> {
        if self.done {
            return Ok(None);
        }
        let mut req = self
            .s3
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(&self.prefix);
        req = match self.token.take() {
            Some(t) => req.continuation_token(t),
            None => req.start_after(&self.start_after),
        };
        let resp = req.send().await.map_err(|e| SourceError::List {
            bucket: self.bucket.clone(),
            prefix: self.prefix.clone(),
            message: sdk_message(&e),
        })?;
        let mut page = Vec::new();
        for obj in resp.contents() {
            let Some(key) = obj.key() else { continue };
            if let (Some(until), Some(date)) = (self.until, LogKey::parse(key).and_then(|k| k.date))
                && date > until
            {
                self.done = true;
                break;
            }
            page.push(ObjectToRead {
                bucket: self.bucket.clone(),
                key: key.to_owned(),
                size: obj.size().and_then(|n| u64::try_from(n).ok()),
            });
        }
        match resp.next_continuation_token() {
            Some(t) if !self.done && resp.is_truncated() == Some(true) => {
                self.token = Some(t.to_owned())
            }
            _ => self.done = true,
        }
        Ok(Some(page))
    }
}

/// Every log file under `loc` from `since` (day precision) to `until` (inclusive day), in
/// key order per account/region: what `trailwatch scan s3://…` reads.
pub async fn scan_objects(
    s3: &aws_sdk_s3::Client,
    loc: &S3Location,
    since: DateTime<Utc>,
    until: Option<NaiveDate>,
) -> Result<Vec<ObjectToRead>, SourceError> {
    let mut out = Vec::new();
    for prefix in discover(s3, loc).await? {
        let mut lister = ObjectLister::new(
            s3.clone(),
            &prefix,
            start_after_for(&prefix.prefix, since),
            until,
        );
        while let Some(page) = lister.next_page().await? {
            out.extend(
                page.into_iter()
                    .filter(|o| LogKey::parse(&o.key).is_some_and(|k| !k.digest)),
            );
        }
    }
    Ok(out)
}

/// What one polling pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PollReport {
    /// Account/region folders found.
    pub prefixes: u64,
    /// Objects read to the end.
    pub objects: u64,
    /// Objects that failed (logged; missing or corrupt ones are passed, others retried).
    pub failed: u64,
    /// Events the pipeline took.
    pub processed: u64,
}

/// Polls one `s3://` location, with a checkpoint per account/region folder.
pub struct S3Poller {
    config: S3PollConfig,
    location: S3Location,
    since: DateTime<Utc>,
    reader: ObjectReader,
    deliverer: Arc<Deliverer>,
    metrics: Arc<SourceMetrics>,
}

impl S3Poller {
    /// A poller for `config`, reading with `reader` and delivering through `deliverer`.
    pub fn new(
        config: S3PollConfig,
        reader: ObjectReader,
        deliverer: Arc<Deliverer>,
        metrics: Arc<SourceMetrics>,
    ) -> Result<S3Poller, SourceError> {
        let location = S3Location::parse(&config.url).map_err(SourceError::Setup)?;
        let since = match &config.since {
            Some(text) => parse_since(text).ok_or_else(|| {
                SourceError::Setup(format!("s3_poll {}: bad since {text:?}", config.name))
            })?,
            None => Utc::now(),
        };
        Ok(S3Poller {
            config,
            location,
            since,
            reader,
            deliverer,
            metrics,
        })
    }

    fn state(&self) -> Arc<Mutex<SourceState>> {
        self.deliverer.state().clone()
    }

    /// One pass: discover folders, read every new object in order, move each checkpoint
    /// after each object. Stops early (between objects) when `cancel` fires.
    pub async fn poll_once(&self, cancel: &CancellationToken) -> Result<PollReport, SourceError> {
        let mut report = PollReport::default();
        let prefixes = discover(&self.reader.s3, &self.location).await?;
        for prefix in prefixes {
            if (!self.config.accounts.is_empty() && !self.config.accounts.contains(&prefix.account))
                || (!self.config.regions.is_empty()
                    && !self.config.regions.contains(&prefix.region))
            {
                continue;
            }
            report.prefixes += 1;
            let name = prefix.checkpoint_name();
            let state = self.state();
            let name2 = name.clone();
            let checkpoint = run_blocking("reading a checkpoint", move || {
                lock(&state).checkpoint(&name2)
            })
            .await??;
            let floor = start_after_for(&prefix.prefix, self.since);
            let start = match checkpoint {
                Some(c) if c > floor => c,
                _ => floor,
            };
            let mut lister = ObjectLister::new(self.reader.s3.clone(), &prefix, start, None);
            'pages: while let Some(page) = lister.next_page().await? {
                for obj in page {
                    if cancel.is_cancelled() {
                        return Ok(report);
                    }
                    let parsed = LogKey::parse(&obj.key);
                    match self
                        .reader
                        .read(&obj.bucket, &obj.key, None, &self.deliverer, &self.metrics)
                        .await
                    {
                        Ok(r) => {
                            report.objects += 1;
                            report.processed += r.processed;
                        }
                        Err(
                            e @ (SourceError::ObjectMissing { .. }
                            | SourceError::Undecodable { .. }),
                        ) => {
                            // It will not get better by retrying: say so loudly, move on.
                            report.failed += 1;
                            tracing::error!(source = %self.config.name, error = %e, "log file could not be read; passing over it");
                        }
                        Err(e) => {
                            report.failed += 1;
                            tracing::warn!(source = %self.config.name, error = %e, "stopping this folder until the next pass");
                            break 'pages;
                        }
                    }
                    let state = self.state();
                    let name = name.clone();
                    let key = obj.key.clone();
                    run_blocking("writing a checkpoint", move || {
                        let mut st = lock(&state);
                        st.set_checkpoint(&name, &key)?;
                        if let Some(k) = parsed.filter(|k| !k.digest) {
                            st.record_delivery(
                                &k.account,
                                &k.region,
                                k.time.unwrap_or_else(Utc::now),
                                &key,
                            )?;
                        }
                        Ok::<_, SourceError>(())
                    })
                    .await??;
                }
            }
        }
        Ok(report)
    }

    /// Polls every `interval` until `cancel` fires; a failed pass is logged and retried.
    pub async fn run(self, cancel: CancellationToken) -> Result<(), SourceError> {
        loop {
            match self.poll_once(&cancel).await {
                Ok(r) => {
                    tracing::info!(source = %self.config.name, prefixes = r.prefixes, objects = r.objects, failed = r.failed, events = r.processed, "S3 polling pass done")
                }
                Err(e) => {
                    tracing::warn!(source = %self.config.name, error = %e, "S3 polling pass failed")
                }
            }
            tokio::select! {
                _ = cancel.cancelled() => return Ok(()),
                _ = tokio::time::sleep(self.config.interval) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_org_and_plain_keys() {
        let k = LogKey::parse("AWSLogs/o-abc123/111122223333/CloudTrail/eu-west-1/2026/01/02/111122223333_CloudTrail_eu-west-1_20260102T0305Z_x1.json.gz").unwrap();
        assert_eq!(k.account, "111122223333");
        assert_eq!(k.region, "eu-west-1");
        assert_eq!(k.date, NaiveDate::from_ymd_opt(2026, 1, 2));
        assert_eq!(k.time.unwrap().to_rfc3339(), "2026-01-02T03:05:00+00:00");
        assert_eq!(
            k.prefix,
            "AWSLogs/o-abc123/111122223333/CloudTrail/eu-west-1/"
        );
        assert!(!k.digest);
        let k = LogKey::parse(
            "trail/AWSLogs/111122223333/CloudTrail-Digest/us-east-1/2026/01/02/x.json.gz",
        )
        .unwrap();
        assert!(k.digest);
        assert_eq!(
            k.prefix,
            "trail/AWSLogs/111122223333/CloudTrail-Digest/us-east-1/"
        );
        assert!(LogKey::parse("AWSLogs/12/CloudTrail/us-east-1/x").is_none());
        assert!(LogKey::parse("other/key.json").is_none());
    }

    #[test]
    fn locations_and_start_keys() {
        let l = S3Location::parse("s3://b/AWSLogs/o-1").unwrap();
        assert_eq!(
            (l.bucket.as_str(), l.prefix.as_str()),
            ("b", "AWSLogs/o-1/")
        );
        assert_eq!(S3Location::parse("s3://b").unwrap().prefix, "");
        assert!(S3Location::parse("https://b").is_err());
        assert!(S3Location::parse("s3:///x").is_err());
        let since = parse_since("2026-01-05").unwrap();
        let start = start_after_for("AWSLogs/1/CloudTrail/r/", since);
        assert_eq!(start, "AWSLogs/1/CloudTrail/r/2026/01/05/");
        // Files of the 5th sort after the start key, files of the 4th before it.
        assert!("AWSLogs/1/CloudTrail/r/2026/01/05/a.json.gz" > start.as_str());
        assert!("AWSLogs/1/CloudTrail/r/2026/01/04/z.json.gz" < start.as_str());
    }
}

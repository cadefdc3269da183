//! `--since`, `--until`, `--account` and `--region`: which events a scan considers.

use std::str::FromStr;

use chrono::{DateTime, NaiveDate, Utc};
use trailwatch_event::{EventMeta, Preview};

use crate::cli::FilterArgs;

/// A point in time given on the command line: absolute, or an age relative to now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeBound {
    /// An absolute instant.
    At(DateTime<Utc>),
    /// This long before the moment the command started.
    Ago(std::time::Duration),
}

impl TimeBound {
    /// The instant this bound stands for, given the current time.
    pub fn resolve(self, now: DateTime<Utc>) -> DateTime<Utc> {
        match self {
            TimeBound::At(t) => t,
            TimeBound::Ago(d) => {
                now - chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
            }
        }
    }
}

impl FromStr for TimeBound {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Ok(t) = DateTime::parse_from_rfc3339(s) {
            return Ok(TimeBound::At(t.with_timezone(&Utc)));
        }
        if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
            let midnight = d.and_hms_opt(0, 0, 0).expect("midnight exists");
            return Ok(TimeBound::At(midnight.and_utc()));
        }
        if let Ok(d) = humantime::parse_duration(s) {
            return Ok(TimeBound::Ago(d));
        }
        Err(format!(
            "{s:?} is not a time: use RFC 3339 (2026-01-01T12:00:00Z), a date (2026-01-01) or an age (24h, 7d)"
        ))
    }
}

/// The resolved filter applied to every event before rules run.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
    accounts: Vec<String>,
    regions: Vec<String>,
}

impl EventFilter {
    /// Builds the filter from flags, resolving relative times against `now`.
    pub fn new(args: &FilterArgs, now: DateTime<Utc>) -> EventFilter {
        EventFilter {
            since: args.since.map(|b| b.resolve(now)),
            until: args.until.map(|b| b.resolve(now)),
            accounts: args.accounts.clone(),
            regions: args.regions.clone(),
        }
    }

    /// The lower bound on event time, if any.
    pub fn since(&self) -> Option<DateTime<Utc>> {
        self.since
    }

    /// The upper bound on event time (exclusive), if any.
    pub fn until(&self) -> Option<DateTime<Utc>> {
        self.until
    }

    /// True when an account/region folder can hold events the filter accepts.
    pub fn accepts_location(&self, account: &str, region: &str) -> bool {
        (self.accounts.is_empty() || self.accounts.iter().any(|a| a == account))
            && (self.regions.is_empty() || self.regions.iter().any(|r| r == region))
    }

    /// True when the event passes every given condition.
    pub fn accepts(&self, meta: &EventMeta) -> bool {
        self.accepts_fields(meta.time, &meta.account, &meta.region)
    }

    /// [`EventFilter::accepts`] before the event is built.
    pub fn accepts_preview(&self, preview: &Preview<'_>) -> bool {
        self.accepts_fields(preview.time, preview.account, preview.region)
    }

    fn accepts_fields(&self, time: DateTime<Utc>, account: &str, region: &str) -> bool {
        self.since.is_none_or(|since| time >= since)
            && self.until.is_none_or(|until| time < until)
            && (self.accounts.is_empty() || self.accounts.iter().any(|a| a == account))
            && (self.regions.is_empty() || self.regions.iter().any(|r| r == region))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn time_bounds_parse_every_form() {
        let t = Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap();
        assert_eq!(
            "2026-01-02T03:04:05Z".parse::<TimeBound>(),
            Ok(TimeBound::At(t))
        );
        assert_eq!(
            "2026-01-02T05:04:05+02:00".parse::<TimeBound>(),
            Ok(TimeBound::At(t))
        );
        let midnight = Utc.with_ymd_and_hms(2026, 1, 2, 0, 0, 0).unwrap();
        assert_eq!(
            "2026-01-02".parse::<TimeBound>(),
            Ok(TimeBound::At(midnight))
        );
        let ago = "24h".parse::<TimeBound>().unwrap();
        assert_eq!(ago.resolve(t), t - chrono::Duration::hours(24));
        assert!("yesterday-ish".parse::<TimeBound>().is_err());
    }
}

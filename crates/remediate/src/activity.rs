//! What an access key did: the records that name it, grouped by API and resource.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use trailwatch_event::{Item, Limits};

/// Records in a folder of CloudTrail logs made with `access_key_id` since `since`. Files
/// are read with the same size-capped decoders as `scan`; the org-trail date folders let
/// files older than `since` be skipped by path.
pub fn from_archive(dir: &Path, access_key_id: &str, since: DateTime<Utc>) -> Vec<Value> {
    let limits = Limits::default();
    let cutoff_day = since.format("%Y/%m/%d").to_string();
    let mut out = Vec::new();
    for entry in walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(Result::ok)
    {
        if !entry.file_type().is_file() {
            continue;
        }
        if let Some(day) = day_of(entry.path())
            && day < cutoff_day
        {
            continue;
        }
        let Ok(file) = std::fs::File::open(entry.path()) else {
            continue;
        };
        let origin: Arc<str> = Arc::from(entry.path().display().to_string());
        trailwatch_event::decode(file, origin, &limits, &mut |item| {
            if let Item::Event(event) = item
                && event.detail().contains(access_key_id)
                && let Ok(record) = serde_json::from_str::<Value>(event.detail())
                && record
                    .pointer("/userIdentity/accessKeyId")
                    .and_then(Value::as_str)
                    == Some(access_key_id)
                && record
                    .get("eventTime")
                    .and_then(Value::as_str)
                    .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                    .is_some_and(|t| t >= since)
            {
                out.push(record);
            }
        });
    }
    out
}

/// `.../YYYY/MM/DD/file` → `YYYY/MM/DD`.
fn day_of(path: &Path) -> Option<String> {
    let parts: Vec<&str> = path.iter().filter_map(|p| p.to_str()).collect();
    let n = parts.len();
    if n < 4 {
        return None;
    }
    let (y, m, d) = (parts[n - 4], parts[n - 3], parts[n - 2]);
    let digits = |s: &str, len: usize| s.len() == len && s.bytes().all(|b| b.is_ascii_digit());
    (digits(y, 4) && digits(m, 2) && digits(d, 2)).then(|| format!("{y}/{m}/{d}"))
}

/// Calls to one API on one resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiActivity {
    /// `service:EventName`.
    pub api: String,
    /// The resource, as far as the record names one.
    pub resource: String,
    /// How many calls.
    pub calls: u64,
    /// How many failed (with an errorCode).
    pub errors: u64,
    /// First and last call.
    pub first: String,
    /// Last call.
    pub last: String,
    /// Source IPs seen.
    pub source_ips: Vec<String>,
}

/// Groups records by API and resource, most calls first.
pub fn summarize(records: &[Value]) -> Vec<ApiActivity> {
    let mut groups: BTreeMap<(String, String), ApiActivity> = BTreeMap::new();
    for r in records {
        let s = |p: &str| {
            r.pointer(p)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned()
        };
        let service = s("/eventSource")
            .trim_end_matches(".amazonaws.com")
            .to_owned();
        let api = format!("{service}:{}", s("/eventName"));
        let resource = resource_of(r);
        let time = s("/eventTime");
        let ip = s("/sourceIPAddress");
        let g = groups
            .entry((api.clone(), resource.clone()))
            .or_insert_with(|| ApiActivity {
                api,
                resource,
                calls: 0,
                errors: 0,
                first: time.clone(),
                last: time.clone(),
                source_ips: Vec::new(),
            });
        g.calls += 1;
        if r.get("errorCode").is_some() {
            g.errors += 1;
        }
        if time < g.first {
            g.first = time.clone();
        }
        if time > g.last {
            g.last = time;
        }
        if !ip.is_empty() && !g.source_ips.contains(&ip) {
            g.source_ips.push(ip);
        }
    }
    let mut out: Vec<ApiActivity> = groups.into_values().collect();
    out.sort_by(|a, b| b.calls.cmp(&a.calls).then(a.api.cmp(&b.api)));
    out
}

fn resource_of(r: &Value) -> String {
    if let Some(arn) = r.pointer("/resources/0/ARN").and_then(Value::as_str) {
        return arn.to_owned();
    }
    let rp = r.get("requestParameters").unwrap_or(&Value::Null);
    for key in [
        "bucketName",
        "groupId",
        "instanceId",
        "userName",
        "roleName",
        "policyArn",
        "functionName",
        "keyId",
        "name",
    ] {
        if let Some(v) = rp.get(key).and_then(Value::as_str) {
            return match (key, rp.get("key").and_then(Value::as_str)) {
                ("bucketName", Some(k)) => format!("s3://{v}/{k}"),
                _ => v.to_owned(),
            };
        }
    }
    if let Some(id) = r
        .pointer("/requestParameters/instancesSet/items/0/instanceId")
        .and_then(Value::as_str)
    {
        return id.to_owned();
    }
    "-".to_owned()
}

/// The summary as text for the notification.
pub fn render(access_key_id: &str, hours: u32, summary: &[ApiActivity], events: usize) -> String {
    if summary.is_empty() {
        return format!("{access_key_id} made no calls in the last {hours} h.\n");
    }
    let mut text = format!("{access_key_id} made {events} calls in the last {hours} h:\n");
    for a in summary.iter().take(25) {
        text.push_str(&format!(
            "  {:>5} × {} on {}{} (from {}; {} .. {})\n",
            a.calls,
            a.api,
            a.resource,
            if a.errors > 0 {
                format!(", {} failed", a.errors)
            } else {
                String::new()
            },
            a.source_ips.join(", "),
            a.first,
            a.last
        ));
    }
    if summary.len() > 25 {
        text.push_str(&format!(
            "  ... and {} more API/resource pairs\n",
            summary.len() - 25
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn groups_by_api_and_resource() {
        let rec = |name: &str, bucket: &str, t: &str, err: bool| {
            let mut r = json!({"eventSource": "s3.amazonaws.com", "eventName": name, "eventTime": t,
                "sourceIPAddress": "198.51.100.1", "requestParameters": {"bucketName": bucket},
                "userIdentity": {"accessKeyId": "AKIA1"}});
            if err {
                r["errorCode"] = json!("AccessDenied");
            }
            r
        };
        let records = vec![
            rec("ListObjects", "a", "2024-01-01T00:00:02Z", false),
            rec("ListObjects", "a", "2024-01-01T00:00:01Z", true),
            rec("GetObject", "b", "2024-01-01T00:00:03Z", false),
        ];
        let s = summarize(&records);
        assert_eq!(s[0].api, "s3:ListObjects");
        assert_eq!((s[0].calls, s[0].errors), (2, 1));
        assert_eq!(s[0].first, "2024-01-01T00:00:01Z");
        assert_eq!(s[1].resource, "b");
        let text = render("AKIA1", 24, &s, 3);
        assert!(text.contains("2 × s3:ListObjects on a, 1 failed"), "{text}");
        assert_eq!(
            day_of(Path::new(
                "/x/AWSLogs/1/CloudTrail/us-east-1/2024/01/31/f.json.gz"
            ))
            .as_deref(),
            Some("2024/01/31")
        );
    }

    #[test]
    fn reads_the_key_s_records_from_an_archive() {
        let dir = tempfile::tempdir().unwrap();
        let day = dir.path().join("AWSLogs/1/CloudTrail/us-east-1/2099/01/01");
        std::fs::create_dir_all(&day).unwrap();
        let rec = |key: &str| {
            json!({"eventVersion": "1.08", "eventTime": "2099-01-01T00:00:00Z", "eventSource": "iam.amazonaws.com",
            "eventName": "ListUsers", "eventID": format!("id-{key}"), "awsRegion": "us-east-1", "recipientAccountId": "1",
            "userIdentity": {"type": "IAMUser", "accessKeyId": key}})
        };
        std::fs::write(
            day.join("a.json"),
            json!({"Records": [rec("AKIAME"), rec("AKIAOTHER")]}).to_string(),
        )
        .unwrap();
        let old = dir.path().join("AWSLogs/1/CloudTrail/us-east-1/2000/01/01");
        std::fs::create_dir_all(&old).unwrap();
        std::fs::write(
            old.join("b.json"),
            json!({"Records": [rec("AKIAME")]}).to_string(),
        )
        .unwrap();
        let since = DateTime::parse_from_rfc3339("2098-12-31T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let found = from_archive(dir.path(), "AKIAME", since);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0]["eventID"], "id-AKIAME");
    }
}

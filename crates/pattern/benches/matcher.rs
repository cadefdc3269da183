//! Matching throughput on CloudTrail records wrapped in the EventBridge
//! envelope, from raw JSON bytes to the list of matching ids, one thread.
//!
//! Corpus: `TRAILWATCH_BENCH_CORPUS` (JSONL of CloudTrail records, e.g. from
//! `../shared/tools/make-corpus --records 200000 --jsonl /tmp/corpus.jsonl`),
//! else one generated under the target dir when `../shared` exists, else the
//! bench is skipped with a message.
//!
//! Times are thread CPU time, not wall time: the machine is shared, and
//! other processes would otherwise inflate the figures at random.
//!
//! Run: `cargo bench -p trailwatch-pattern --bench matcher -- --warm-up-time 1 --measurement-time 3`

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::hint::black_box;
use std::path::PathBuf;

use std::time::Duration;

use cpu_time::ThreadTime;
use criterion::measurement::{Measurement, ValueFormatter, WallTime};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde::Deserialize;
use serde_json::value::RawValue;
use trailwatch_pattern::{Matcher, Pattern, Scratch};

/// Criterion measurement by the benchmark thread's CPU time.
struct ThreadCpu {
    wall: WallTime,
}

impl Measurement for ThreadCpu {
    type Intermediate = ThreadTime;
    type Value = Duration;

    fn start(&self) -> ThreadTime {
        ThreadTime::now()
    }
    fn end(&self, start: ThreadTime) -> Duration {
        start.elapsed()
    }
    fn add(&self, a: &Duration, b: &Duration) -> Duration {
        *a + *b
    }
    fn zero(&self) -> Duration {
        Duration::ZERO
    }
    fn to_f64(&self, d: &Duration) -> f64 {
        d.as_nanos() as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        // Same unit (nanoseconds) as wall time.
        self.wall.formatter()
    }
}

/// Events per measured batch.
const EVENTS: usize = 5_000;

fn corpus_path() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("TRAILWATCH_BENCH_CORPUS") {
        return Some(PathBuf::from(p));
    }
    let tool = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/tools/make-corpus");
    if !tool.exists() {
        return None;
    }
    // target/<profile>/deps/matcher-… → target/
    let exe = std::env::current_exe().ok()?;
    let target = exe.parent()?.parent()?.parent()?.to_path_buf();
    let out = target.join("bench-corpus.jsonl");
    if !out.exists() {
        let status = std::process::Command::new("python3")
            .arg(&tool)
            .args(["--records", "20000", "--jsonl"])
            .arg(&out)
            .status()
            .ok()?;
        if !status.success() {
            return None;
        }
    }
    Some(out)
}

// Fields exist to be parsed (that is the baseline's cost), not read.
#[allow(dead_code)]
#[derive(Deserialize)]
struct Rec<'a> {
    #[serde(rename = "eventSource", borrow)]
    event_source: Cow<'a, str>,
    #[serde(rename = "eventName", borrow)]
    event_name: Cow<'a, str>,
    #[serde(rename = "eventID", borrow, default)]
    event_id: Cow<'a, str>,
    #[serde(rename = "eventTime", borrow, default)]
    event_time: Cow<'a, str>,
    #[serde(rename = "awsRegion", borrow, default)]
    aws_region: Cow<'a, str>,
    #[serde(rename = "recipientAccountId", borrow, default)]
    recipient_account_id: Cow<'a, str>,
    #[serde(rename = "sourceIPAddress", borrow, default)]
    source_ip_address: Option<Cow<'a, str>>,
    #[serde(rename = "userIdentity", borrow, default)]
    user_identity: Option<Identity<'a>>,
    #[serde(rename = "requestParameters", borrow, default)]
    request_parameters: Option<&'a RawValue>,
    #[serde(rename = "responseElements", borrow, default)]
    response_elements: Option<&'a RawValue>,
    #[serde(rename = "additionalEventData", borrow, default)]
    additional_event_data: Option<&'a RawValue>,
    #[serde(rename = "errorCode", borrow, default)]
    error_code: Option<Cow<'a, str>>,
    #[serde(rename = "userAgent", borrow, default)]
    user_agent: Option<Cow<'a, str>>,
}

#[allow(dead_code)]
#[derive(Deserialize)]
struct Identity<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    arn: Option<Cow<'a, str>>,
    #[serde(rename = "accountId", borrow, default)]
    account_id: Option<Cow<'a, str>>,
}

/// The baseline: the envelope parsed into a borrowed struct by serde_json.
#[allow(dead_code)]
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    version: Cow<'a, str>,
    #[serde(borrow)]
    id: Cow<'a, str>,
    #[serde(rename = "detail-type", borrow)]
    detail_type: Cow<'a, str>,
    #[serde(borrow)]
    source: Cow<'a, str>,
    #[serde(borrow)]
    account: Cow<'a, str>,
    #[serde(borrow)]
    time: Cow<'a, str>,
    #[serde(borrow)]
    region: Cow<'a, str>,
    #[serde(borrow)]
    resources: Vec<Cow<'a, str>>,
    #[serde(borrow)]
    detail: Rec<'a>,
}

/// What the rule generators sample from the corpus.
#[derive(Default)]
struct Sample {
    pairs: BTreeSet<(String, String)>,
    arns: BTreeSet<String>,
    ips: BTreeSet<String>,
    buckets: BTreeSet<String>,
    roles: BTreeSet<String>,
}

fn envelope(line: &str, sample: &mut Sample) -> Option<Vec<u8>> {
    let r: Rec<'_> = serde_json::from_str(line).ok()?;
    let service = r.event_source.split('.').next().unwrap_or("unknown");
    let event = format!(
        r#"{{"version":"0","id":"{}","detail-type":"AWS API Call via CloudTrail","source":"aws.{}","account":"{}","time":"{}","region":"{}","resources":[],"detail":{}}}"#,
        r.event_id, service, r.recipient_account_id, r.event_time, r.aws_region, line
    );
    sample
        .pairs
        .insert((r.event_source.to_string(), r.event_name.to_string()));
    if let Some(arn) = r.user_identity.as_ref().and_then(|u| u.arn.as_ref()) {
        sample.arns.insert(arn.to_string());
    }
    if let Some(ip) = r
        .source_ip_address
        .as_ref()
        .filter(|ip| ip.split('.').count() == 4)
    {
        sample.ips.insert(ip.to_string());
    }
    if let Some(p) = r.request_parameters {
        #[derive(Deserialize)]
        struct Params {
            #[serde(rename = "bucketName")]
            bucket_name: Option<String>,
            #[serde(rename = "roleName")]
            role_name: Option<String>,
        }
        if let Ok(p) = serde_json::from_str::<Params>(p.get()) {
            sample.buckets.extend(p.bucket_name);
            sample.roles.extend(p.role_name);
        }
    }
    Some(event.into_bytes())
}

fn pick(set: &BTreeSet<String>, i: usize) -> &str {
    set.iter()
        .nth(i % set.len().max(1))
        .map_or("x", String::as_str)
}

fn json(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

/// Exact rules on eventSource + eventName: every pair seen, then pairs with
/// names the corpus never uses (rules for calls that do not happen).
fn exact_rules(n: usize, s: &Sample) -> Vec<String> {
    let pairs: Vec<_> = s.pairs.iter().collect();
    (0..n)
        .map(|i| {
            let (src, name) = pairs[i % pairs.len()];
            let name = if i < pairs.len() {
                name.clone()
            } else {
                format!("{name}V{i}")
            };
            format!(
                r#"{{"detail":{{"eventSource":[{}],"eventName":[{}]}}}}"#,
                json(src),
                json(&name)
            )
        })
        .collect()
}

/// Prefix rules on eventName: short prefixes of seen names, then prefixes
/// no name has.
fn prefix_rules(n: usize, s: &Sample) -> Vec<String> {
    let names: BTreeSet<&str> = s.pairs.iter().map(|(_, n)| n.as_str()).collect();
    let names: Vec<&str> = names.into_iter().collect();
    (0..n)
        .map(|i| {
            let name = names[i % names.len()];
            let head: String = name.chars().take(3 + i % 8).collect();
            let p = if i < names.len() {
                head
            } else {
                format!("{head}X{i}")
            };
            format!(
                r#"{{"detail":{{"eventName":[{{"prefix":{}}}]}}}}"#,
                json(&p)
            )
        })
        .collect()
}

/// Every operator on realistic fields. The first 1,000 rules use values
/// seen in the corpus; beyond that, event names the corpus never uses, as in
/// `exact_rules` (large rule sets mostly watch for rare calls).
fn mixed_rules(n: usize, s: &Sample) -> Vec<String> {
    let pairs: Vec<_> = s.pairs.iter().collect();
    (0..n)
        .map(|i| {
            let (src, name) = pairs[i % pairs.len()];
            let name = if i < 1_000 {
                name.clone()
            } else {
                format!("{name}V{i}")
            };
            let (src, name) = (json(src), json(&name));
            let arn = pick(&s.arns, i);
            let account = arn.split(':').nth(4).unwrap_or("123456789012");
            let rule = mixed_rule(i, &src, &name, arn, account, s);
            // Beyond the first 1,000, every rule also names its (unseen)
            // event, so duplicates of broad rules do not inflate the matches.
            if i >= 1_000 && matches!(i % 10, 0 | 3 | 4 | 6 | 9) {
                rule.replacen(
                    r#""detail":{"#,
                    &format!(r#""detail":{{"eventName":[{name}],"#),
                    1,
                )
            } else {
                rule
            }
        })
        .collect()
}

fn mixed_rule(i: usize, src: &str, name: &str, arn: &str, account: &str, s: &Sample) -> String {
    let user = arn.rsplit('/').next().unwrap_or("x");
    let who: String = user.chars().take(1 + i % 4).collect();
    match i % 10 {
        0 => format!(
            r#"{{"detail":{{"eventSource":[{src}],"userIdentity":{{"arn":[{{"wildcard":"arn:aws:iam::{account}:user/{who}*"}}]}}}}}}"#
        ),
        1 => {
            let ip = pick(&s.ips, i);
            let net: Vec<&str> = ip.split('.').take(3).collect();
            format!(
                r#"{{"detail":{{"eventName":[{name}],"sourceIPAddress":[{{"cidr":"{}.0/{}"}}]}}}}"#,
                net.join("."),
                16 + i % 9
            )
        }
        2 => {
            let b = pick(&s.buckets, i);
            let p: String = b.chars().take(3 + i % 5).collect();
            format!(
                r#"{{"detail":{{"eventName":[{name}],"requestParameters":{{"bucketName":[{{"prefix":{}}}]}}}}}}"#,
                json(&p)
            )
        }
        3 => {
            let r = pick(&s.roles, i);
            let tail: String = r
                .chars()
                .rev()
                .take(3 + i % 4)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            format!(
                r#"{{"detail":{{"eventSource":[{src}],"requestParameters":{{"roleName":[{{"suffix":{}}}]}}}}}}"#,
                json(&tail)
            )
        }
        4 if i % 20 == 4 => {
            format!(r#"{{"detail":{{"eventName":[{name}],"errorCode":[{{"exists":false}}]}}}}"#)
        }
        4 => {
            format!(r#"{{"detail":{{"eventSource":[{src}],"errorCode":[{{"exists":true}}]}}}}"#)
        }
        5 => format!(
            r#"{{"source":["aws.s3"],"detail":{{"eventName":[{name}],"additionalEventData":{{"bytesTransferredOut":[{{"numeric":[">",{}]}}]}}}}}}"#,
            i * 100
        ),
        6 => format!(
            r#"{{"detail":{{"eventSource":[{src}],"$or":[{{"eventName":[{name}]}},{{"errorCode":[{{"prefix":"AccessDenied"}}]}}]}}}}"#
        ),
        7 => format!(
            r#"{{"detail":{{"eventName":[{name}],"userIdentity":{{"type":[{{"anything-but":["IAMUser","AWSService"]}}]}}}}}}"#
        ),
        8 => format!(
            r#"{{"detail-type":["AWS API Call via CloudTrail"],"detail":{{"eventName":[{{"equals-ignore-case":{name}}}]}}}}"#
        ),
        _ => format!(
            r#"{{"detail":{{"userIdentity":{{"arn":[{{"wildcard":"arn:aws:sts::{account}:assumed-role/*/{}*"}}]}}}}}}"#,
            i % 7
        ),
    }
}

fn compile(rules: &[String]) -> Matcher<usize> {
    let mut m = Matcher::new();
    for (i, r) in rules.iter().enumerate() {
        match Pattern::parse(r) {
            Ok(p) => m.add(i, &p),
            Err(e) => panic!("bench rule {r}: {e}"),
        }
    }
    m
}

fn benches(c: &mut Criterion<ThreadCpu>) {
    let Some(path) = corpus_path() else {
        eprintln!(
            "matcher bench: no corpus (set TRAILWATCH_BENCH_CORPUS or provide ../shared); skipping"
        );
        return;
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!(
                "matcher bench: cannot read {}: {e}; skipping",
                path.display()
            );
            return;
        }
    };
    let mut sample = Sample::default();
    // Sample rule values from a wider slice than the measured events.
    let events: Vec<Vec<u8>> = text
        .lines()
        .take(20_000)
        .filter_map(|l| envelope(l, &mut sample))
        .collect();
    let events = &events[..EVENTS.min(events.len())];
    let bytes: usize = events.iter().map(Vec::len).sum();
    eprintln!(
        "matcher bench: {} events, {:.0} bytes/event, {} (source,name) pairs",
        events.len(),
        bytes as f64 / events.len() as f64,
        sample.pairs.len()
    );

    let mut g = c.benchmark_group("matcher");
    g.throughput(Throughput::Elements(events.len() as u64));
    g.bench_function("serde_json_borrowed_parse", |b| {
        b.iter(|| {
            let mut n = 0usize;
            for e in events {
                if let Ok(env) = serde_json::from_slice::<Envelope<'_>>(e) {
                    n += env.detail.event_name.len();
                }
            }
            black_box(n)
        })
    });
    let sets = [
        ("exact_100", exact_rules(100, &sample)),
        ("exact_1000", exact_rules(1_000, &sample)),
        ("exact_10000", exact_rules(10_000, &sample)),
        ("prefix_100", prefix_rules(100, &sample)),
        ("prefix_10000", prefix_rules(10_000, &sample)),
        ("mixed_1000", mixed_rules(1_000, &sample)),
        ("mixed_10000", mixed_rules(10_000, &sample)),
    ];
    for (name, rules) in &sets {
        let m = compile(rules);
        let mut scratch = Scratch::default();
        let mut out = Vec::new();
        let mut hits = 0usize;
        for e in events {
            m.matches_with(e, &mut scratch, &mut out)
                .expect("corpus events are valid");
            hits += out.len();
        }
        eprintln!(
            "{name}: {} rules, {:.2} matches/event",
            m.len(),
            hits as f64 / events.len() as f64
        );
        g.bench_function(*name, |b| {
            b.iter(|| {
                let mut n = 0usize;
                for e in events {
                    if m.matches_with(e, &mut scratch, &mut out).is_ok() {
                        n += out.len();
                    }
                }
                black_box(n)
            })
        });
    }
    g.finish();
}

criterion_group! {
    name = matcher;
    config = Criterion::default().with_measurement(ThreadCpu { wall: WallTime });
    targets = benches
}
criterion_main!(matcher);

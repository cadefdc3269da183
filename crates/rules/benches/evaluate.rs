//! `RuleSet::evaluate` with the built-in pack over real CloudTrail logs (the invictus-ir
//! dataset and the Stratus Red Team detonations in ../shared). Skips when the data is absent.

use std::path::PathBuf;
use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use trailwatch_config::Config;
use trailwatch_event::{Event, Provenance};
use trailwatch_rules::{EvalScratch, RuleSet, builtin_sources};

fn load_events() -> Vec<Event> {
    let base = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/cloudtrail");
    let mut events = Vec::new();
    for dir in [
        "invictus-ir_aws_dataset/CloudTrail",
        "stratus-red-team_detonation-logs",
    ] {
        let Ok(entries) = std::fs::read_dir(base.join(dir)) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_none_or(|x| x != "json") {
                continue;
            }
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            let Ok(value) = serde_json::from_str::<serde_json::Value>(&text) else {
                continue;
            };
            let records = match value {
                serde_json::Value::Array(a) => a,
                serde_json::Value::Object(mut o) => match o.remove("Records") {
                    Some(serde_json::Value::Array(a)) => a,
                    _ => Vec::new(),
                },
                _ => Vec::new(),
            };
            let origin: Arc<str> = Arc::from(path.display().to_string());
            for r in records {
                if let Ok(e) = Event::from_record(&r.to_string(), Provenance::new(origin.clone())) {
                    events.push(e);
                }
            }
        }
    }
    events
}

fn bench(c: &mut Criterion) {
    let events = load_events();
    if events.is_empty() {
        eprintln!("skipped: no shared CloudTrail data");
        return;
    }
    let set = match RuleSet::compile(&builtin_sources(), &Config::default()) {
        Ok(s) => s,
        Err(e) => panic!("{e}"),
    };
    let mut group = c.benchmark_group("evaluate");
    group.throughput(Throughput::Elements(events.len() as u64));
    group.bench_function(format!("builtin pack, {} real events", events.len()), |b| {
        let mut scratch = EvalScratch::default();
        b.iter(|| {
            let mut n = 0;
            for e in &events {
                n += set.evaluate(e, &mut scratch).len();
            }
            n
        });
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

//! Alerts per second through the outbox to a local webhook (the testkit recorder):
//! enqueue a batch (one fsynced transaction), then deliver until idle.
//!
//! `CARGO_TARGET_DIR=... cargo bench -p trailwatch-notify --bench outbox_throughput`

use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use trailwatch_alert::Severity;
use trailwatch_notify::{Notifier, parse_section, sample_alert};
use trailwatch_testkit::Recorder;

const BATCH: usize = 500;

fn bench(c: &mut Criterion) {
    let rec = Recorder::start().expect("recorder");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mut group = c.benchmark_group("outbox");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    group.throughput(Throughput::Elements(BATCH as u64));
    for concurrency in [1usize, 8] {
        let yaml = format!(
            "destinations:\n  hook: {{ type: webhook, url: '{}' }}\nroutes:\n  - {{ to: [hook] }}\noutbox: {{ concurrency: {concurrency} }}\n",
            rec.url("/bench")
        );
        group.bench_function(format!("webhook_concurrency_{concurrency}"), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let dir = tempfile::tempdir().expect("tempdir");
                    let config = parse_section("bench", &yaml, 1).expect("config");
                    let notifier =
                        Notifier::open(config, &dir.path().join("outbox.sqlite")).expect("open");
                    let alerts: Vec<_> = (0..BATCH)
                        .map(|i| sample_alert("bench", Severity::High, &format!("b-{i}")))
                        .collect();
                    let start = Instant::now();
                    notifier.enqueue_batch(&alerts).expect("enqueue");
                    let stats = runtime
                        .block_on(notifier.run_until_idle())
                        .expect("deliver");
                    total += start.elapsed();
                    assert_eq!(stats.delivered, BATCH as u64);
                    rec.clear();
                }
                total
            });
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

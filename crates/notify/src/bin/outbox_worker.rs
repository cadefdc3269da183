//! Test and benchmark helper: `trailwatch-notify-worker OUTBOX BASE_URL ROUTING_KEY_FILE COUNT`
//! enqueues alerts `crash-0..COUNT` (idempotently, so a restart after a kill re-enqueues
//! nothing twice) for a webhook at `BASE_URL/hook` and a PagerDuty endpoint at
//! `BASE_URL/v2/enqueue`, delivers until the outbox is idle, prints the run's counts as JSON,
//! and exits 0. The crash test SIGKILLs it at random moments and starts it again.

use std::path::Path;
use std::process::ExitCode;

use trailwatch_alert::Severity;
use trailwatch_notify::{Notifier, parse_section, sample_alert};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 6 {
        eprintln!(
            "usage: {} OUTBOX HOOK_BASE_URL PAGERDUTY_BASE_URL ROUTING_KEY_FILE COUNT",
            args[0]
        );
        return ExitCode::from(2);
    }
    let (outbox, hook, pd, key_file) = (&args[1], &args[2], &args[3], &args[4]);
    let Ok(count) = args[5].parse::<usize>() else {
        eprintln!("COUNT must be a number");
        return ExitCode::from(2);
    };
    let yaml = format!(
        "destinations:
  hook: {{ type: webhook, url: '{hook}/hook', timeout_seconds: 2 }}
  pd: {{ type: pagerduty, routing_key_file: '{key_file}', events_url: '{pd}/v2/enqueue', timeout_seconds: 2 }}
routes:
  - {{ to: [hook, pd] }}
outbox: {{ base_delay_ms: 10, max_delay_seconds: 1, max_attempts: 1000, concurrency: 8 }}
"
    );
    let config = match parse_section("worker", &yaml, 1) {
        Ok(c) => c,
        Err(errors) => {
            for e in errors {
                eprintln!("{e}");
            }
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        let notifier = Notifier::open(config, Path::new(outbox))?;
        let alerts: Vec<_> = (0..count)
            .map(|i| {
                let mut a = sample_alert("crash-test", Severity::High, &format!("crash-{i}"));
                a.title = format!("alert {i}");
                a
            })
            .collect();
        let added = notifier.enqueue_batch(&alerts)?;
        let stats = notifier.run_until_idle().await?;
        Ok::<_, trailwatch_notify::NotifyError>((added, stats))
    });
    match result {
        Ok((added, stats)) => {
            println!(
                "{{\"enqueued\":{added},\"delivered\":{},\"retried\":{},\"dead\":{}}}",
                stats.delivered, stats.retried, stats.dead
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("worker: {e}");
            ExitCode::FAILURE
        }
    }
}

//! `trailwatch run`: the long-running service.
//!
//! Sources (SQS queues, the SNS endpoint, S3 pollers, the dead-man check) feed the
//! [`AlertPipeline`]; the notifier delivers out of the outbox beside it; `/metrics` serves
//! every counter. SIGTERM or Ctrl-C stops the sources taking new work, lets in-flight work
//! finish (a message not fully handled is not deleted), then stops delivery.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use trailwatch_config::Config;
use trailwatch_notify::{Notifier, NotifyConfig};
use trailwatch_remediate::{Mode, RemediationConfig};
use trailwatch_rules::{Clock, Gate, RuleSet, SystemClock};
use trailwatch_sources::deadman::AlertSink;
use trailwatch_sources::{CancellationToken, Metrics, Pipeline, SourcesConfig};

use crate::cli::{EXIT_FAILED_CHECK, EXIT_OK, RunArgs};
use crate::gate_state::DurableGateState;
use crate::pipeline::{AlertPipeline, PipelineMetrics, RemediationHook};
use crate::remediation_cmd::{self, OutboxNotify};
use crate::state;

/// How often idle dedup windows are closed by the clock.
const TICK_EVERY: Duration = Duration::from_secs(1);

/// Everything `run` needs, validated before anything starts.
pub struct Service {
    /// The compiled rules.
    pub ruleset: Arc<RuleSet>,
    /// The `sources:` section.
    pub sources: SourcesConfig,
    /// The `destinations`, `routes` and `outbox` sections.
    pub notify: NotifyConfig,
    /// The state folder.
    pub state_dir: PathBuf,
    /// Where `/metrics` is served, if anywhere.
    pub metrics_listen: Option<SocketAddr>,
    /// The `remediation:` section.
    pub remediation: RemediationConfig,
}

/// Reads the `sources:` section; every error at once.
pub fn sources_config(config: &Config) -> anyhow::Result<Option<SourcesConfig>> {
    let Some(section) = config.section("sources") else {
        return Ok(None);
    };
    trailwatch_sources::parse_section(&section.origin, &section.text, 1)
        .map(Some)
        .map_err(|errors| {
            let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
            anyhow::anyhow!("invalid config:\n{}", lines.join("\n"))
        })
}

fn metrics_flag(text: &str) -> anyhow::Result<Option<SocketAddr>> {
    if text == "off" {
        return Ok(None);
    }
    text.parse()
        .map(Some)
        .with_context(|| format!("--metrics-listen {text:?} is not an address (or off)"))
}

impl Service {
    /// Loads and checks the config, rules and every section `run` uses. Errors of all
    /// sections are reported together.
    pub fn load(args: &RunArgs) -> anyhow::Result<Service> {
        if args.rules.config.is_none() {
            anyhow::bail!(
                "run needs --config FILE with a `sources:` section (see docs/aws-setup.md)"
            );
        }
        let (config, ruleset) = crate::ruleset::load(&args.rules)?;
        let mut problems = Vec::new();
        let sources = match sources_config(&config) {
            Ok(Some(sources)) => Some(sources),
            Ok(None) => {
                problems.push(format!(
                    "{}: no `sources:` section: nothing to run (declare sqs, sns_http or s3_poll)",
                    config.origin
                ));
                None
            }
            Err(e) => {
                problems.push(strip_prefix(&e));
                None
            }
        };
        let notify = crate::alerts_cmd::notify_config_of(&config)
            .map_err(|e| problems.push(strip_prefix(&e)))
            .ok();
        let metrics_listen = match &args.metrics_listen {
            Some(flag) => metrics_flag(flag).map_err(|e| problems.push(e.to_string())),
            None => state::metrics_listen(&config).map_err(|e| problems.push(strip_prefix(&e))),
        }
        .ok()
        .flatten();
        let state_dir = state::state_dir(args.state.as_deref(), &config)
            .map_err(|e| problems.push(strip_prefix(&e)))
            .ok();
        let remediation = remediation_cmd::config_of(&config)
            .map_err(|e| problems.push(strip_prefix(&e)))
            .ok();
        match (sources, notify, state_dir, remediation) {
            (Some(sources), Some(notify), Some(state_dir), Some(remediation))
                if problems.is_empty() =>
            {
                if sources.sqs.is_empty()
                    && sources.sns_http.is_none()
                    && sources.s3_poll.is_empty()
                {
                    anyhow::bail!(
                        "invalid config:\n{}: `sources:` declares no sqs, sns_http or s3_poll source",
                        config.origin
                    );
                }
                Ok(Service {
                    ruleset: Arc::new(ruleset),
                    sources,
                    notify,
                    state_dir,
                    metrics_listen,
                    remediation,
                })
            }
            _ => anyhow::bail!("invalid config:\n{}", problems.join("\n")),
        }
    }

    /// A one-screen description of what will run.
    pub fn describe(&self) -> String {
        let mut lines = Vec::new();
        for q in &self.sources.sqs {
            lines.push(format!("  source sqs {}: {}", q.name, q.queue_url));
        }
        if let Some(sns) = &self.sources.sns_http {
            let scheme = if sns.tls_cert.is_some() {
                "https"
            } else {
                "http"
            };
            lines.push(format!(
                "  source sns_http: {scheme}://{}{} ({} allowed topic(s))",
                sns.listen,
                sns.path,
                sns.allowed_topics.len()
            ));
        }
        for p in &self.sources.s3_poll {
            lines.push(format!("  source s3_poll {}: {}", p.name, p.url));
        }
        if let Some(d) = &self.sources.deadman {
            lines.push(format!(
                "  dead-man check: alert after {}s without a log file",
                d.after.as_secs()
            ));
        }
        let mut destinations: Vec<&str> = self
            .notify
            .destinations
            .keys()
            .map(String::as_str)
            .collect();
        if destinations.is_empty() {
            destinations.push("stdout (no destinations configured)");
        }
        lines.push(format!(
            "  {} rules; destinations: {}",
            self.ruleset.rules().len(),
            destinations.join(", ")
        ));
        lines.push(format!(
            "  state: {}; outbox: {}",
            self.state_dir.display(),
            self.outbox_path().display()
        ));
        match self.metrics_listen {
            Some(addr) => lines.push(format!("  metrics: http://{addr}/metrics")),
            None => lines.push("  metrics: off".to_owned()),
        }
        lines.push(self.describe_remediation());
        lines.join("\n")
    }

    fn describe_remediation(&self) -> String {
        let planned: Vec<&str> = self
            .ruleset
            .rules()
            .iter()
            .filter(|r| !r.remediation_actions().is_empty())
            .map(|r| r.id.as_str())
            .collect();
        let acting: Vec<String> = planned
            .iter()
            .filter_map(|id| match self.remediation.mode_for(id) {
                Mode::DryRun => None,
                mode => Some(format!("{id} ({})", mode.as_str())),
            })
            .collect();
        let mut line = format!(
            "  remediation: {} rule(s) with plans; {}",
            planned.len(),
            if acting.is_empty() {
                "all dry-run (plans are recorded, nothing runs)".to_owned()
            } else {
                format!("acting: {}", acting.join(", "))
            }
        );
        if self.remediation.approval_base_url.is_some() {
            line.push_str(&format!(
                "; approval pages on http://{}",
                self.remediation.approval_listen
            ));
        }
        line
    }

    /// The outbox file.
    pub fn outbox_path(&self) -> PathBuf {
        self.notify.outbox.path_in(&self.state_dir)
    }

    fn sources_state_path(&self) -> PathBuf {
        self.state_dir.join("sources.sqlite")
    }
}

/// `invalid config:\n…` from a section loader, without the prefix (it is added once).
fn strip_prefix(e: &anyhow::Error) -> String {
    let text = format!("{e:#}");
    text.strip_prefix("invalid config:\n")
        .map(str::to_owned)
        .unwrap_or(text)
}

/// Cancels `token` on SIGTERM or Ctrl-C.
async fn stop_on_signal(token: CancellationToken) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut term) = signal(SignalKind::terminate()) else {
            tracing::warn!("cannot listen for SIGTERM");
            return;
        };
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM: finishing in-flight work, then stopping"),
            _ = tokio::signal::ctrl_c() => tracing::info!("interrupted: finishing in-flight work, then stopping"),
            _ = token.cancelled() => return,
        }
    }
    #[cfg(not(unix))]
    {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => tracing::info!("interrupted: finishing in-flight work, then stopping"),
            _ = token.cancelled() => return,
        }
    }
    token.cancel();
}

/// Runs the service until a signal (or a fatal error) stops it.
pub async fn serve(service: Service) -> anyhow::Result<u8> {
    let cancel = CancellationToken::new();
    tokio::spawn(stop_on_signal(cancel.clone()));

    let outbox_path = service.outbox_path();
    let notifier = Arc::new(
        Notifier::open(service.notify.clone(), &outbox_path)
            .with_context(|| format!("cannot open the outbox {}", outbox_path.display()))?,
    );
    let metrics = Metrics::new();
    let pipeline_metrics = Arc::new(PipelineMetrics::default());
    metrics.add_collector(Box::new({
        let pm = pipeline_metrics.clone();
        let notifier = notifier.clone();
        move |out| {
            pm.render(out);
            render_outbox(out, &notifier);
        }
    }));
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let gate_path = service.state_dir.join("gate.sqlite");
    let (windows, unreadable) = DurableGateState::open(&gate_path)?;
    if unreadable > 0 {
        tracing::warn!(
            count = unreadable,
            path = %gate_path.display(),
            "rule windows written by another version were dropped"
        );
    }
    let gate = Gate::new(&service.ruleset, Box::new(windows), clock);
    let remediator = remediation_cmd::open(
        service.remediation.clone(),
        &service.state_dir,
        Arc::new(OutboxNotify(notifier.clone())),
    )
    .await?;
    let wake = Arc::new(tokio::sync::Notify::new());
    let pipeline = Arc::new(
        AlertPipeline::new(
            service.ruleset.clone(),
            gate,
            notifier.clone(),
            pipeline_metrics,
            cancel.clone(),
        )
        .with_remediation(RemediationHook {
            remediator: remediator.clone(),
            wake: wake.clone(),
        }),
    );
    let executor = tokio::spawn(remediation_cmd::executor(
        remediator.clone(),
        wake.clone(),
        cancel.clone(),
    ));
    let approvals = if remediator.links_enabled() {
        let addr = service.remediation.approval_listen;
        let listener = std::net::TcpListener::bind(addr)
            .with_context(|| format!("cannot listen for approval pages on {addr}"))?;
        tracing::info!(%addr, "serving remediation approval pages");
        Some(tokio::spawn(crate::approval_server::serve(
            listener,
            remediator.clone(),
            wake.clone(),
            cancel.clone(),
        )))
    } else {
        if service.remediation.approval_base_url.is_some() {
            tracing::warn!(
                variable = service
                    .remediation
                    .approval_secret_env
                    .as_deref()
                    .unwrap_or(""),
                "approval links are off: the signing key variable is not set; approve with `trailwatch remediation approve`"
            );
        }
        None
    };

    let metrics_server = match service.metrics_listen {
        Some(addr) => {
            let listener = std::net::TcpListener::bind(addr)
                .with_context(|| format!("cannot listen for /metrics on {addr}"))?;
            tracing::info!(%addr, "serving /metrics");
            Some(tokio::spawn(trailwatch_sources::metrics::serve(
                listener,
                metrics.clone(),
                cancel.clone(),
            )))
        }
        None => None,
    };
    let delivery = tokio::spawn({
        let notifier = notifier.clone();
        let stop = cancel.clone();
        async move { notifier.run(stop.cancelled_owned()).await }
    });
    let ticker = tokio::spawn({
        let pipeline = pipeline.clone();
        let stop = cancel.clone();
        async move {
            let mut every = tokio::time::interval(TICK_EVERY);
            loop {
                tokio::select! {
                    _ = every.tick() => {}
                    _ = stop.cancelled() => return,
                }
                let p = pipeline.clone();
                if let Ok(Err(e)) = tokio::task::spawn_blocking(move || p.tick()).await {
                    tracing::error!(error = %e, "closing idle windows failed");
                }
            }
        }
    });
    let sink: AlertSink = Arc::new({
        let pipeline = pipeline.clone();
        move |alert| {
            if let Err(e) = pipeline.write(std::slice::from_ref(&alert)) {
                tracing::error!(error = %e, rule = %alert.rule_id, "cannot enqueue the alert");
            }
        }
    });
    eprintln!("trailwatch run: starting\n{}", service.describe());
    let sources = trailwatch_sources::run_sources(
        &service.sources,
        &service.sources_state_path(),
        pipeline.clone() as Arc<dyn Pipeline>,
        sink,
        metrics,
        cancel.clone(),
    )
    .await;
    cancel.cancel();
    let _ = ticker.await;
    // A remediation job in progress finishes (its steps are audited as they go).
    if executor.await.is_err() {
        tracing::error!("the remediation executor panicked");
    }
    if let Some(server) = approvals
        && let Ok(Err(e)) = server.await
    {
        tracing::error!(error = %e, "the approval pages failed");
    }
    let delivered = delivery.await.context("the delivery loop panicked")?;
    if let Some(server) = metrics_server
        && let Ok(Err(e)) = server.await
    {
        tracing::error!(error = %e, "the metrics endpoint failed");
    }
    let counts = notifier.counts().ok();
    match (&sources, &delivered) {
        (Ok(()), Ok(stats)) => {
            eprintln!(
                "trailwatch run: stopped; this run delivered {} alert(s), {} waiting in the outbox",
                stats.delivered,
                counts.map_or(0, |c| c.pending)
            );
            Ok(EXIT_OK)
        }
        _ => {
            if let Err(e) = &sources {
                eprintln!("trailwatch run: a source failed: {e}");
            }
            if let Err(e) = &delivered {
                eprintln!("trailwatch run: delivery failed: {e}");
            }
            Ok(EXIT_FAILED_CHECK)
        }
    }
}

/// Outbox gauges: deliveries pending and dead.
fn render_outbox(out: &mut String, notifier: &Notifier) {
    use std::fmt::Write as _;
    let Ok(counts) = notifier.counts() else {
        return;
    };
    for (name, help, value) in [
        (
            "trailwatch_outbox_pending",
            "Deliveries waiting in the outbox (including retries).",
            counts.pending,
        ),
        (
            "trailwatch_outbox_dead",
            "Deliveries in the dead-letter list.",
            counts.dead,
        ),
    ] {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} gauge");
        let _ = writeln!(out, "{name} {value}");
    }
}

/// `trailwatch run`.
pub fn run(args: RunArgs) -> anyhow::Result<u8> {
    let service = Service::load(&args)?;
    if args.check {
        println!(
            "trailwatch run --check: the config is valid\n{}",
            service.describe()
        );
        return Ok(EXIT_OK);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("trailwatch-run")
        .build()
        .context("cannot start the runtime")?;
    runtime.block_on(serve(service))
}

//! The notifier: routes alerts into the outbox and drives deliveries out of it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::path::Path;
use std::pin::pin;
use std::sync::Mutex;
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use trailwatch_alert::{Alert, Severity};

use crate::backoff::Backoff;
use crate::config::{DEFAULT_DESTINATION, NotifyConfig};
use crate::digest;
use crate::error::{DeliveryError, NotifyError};
use crate::outbox::{DeadLetter, Delivery, Outbox, OutboxCounts, RetrySelector, Schedule, now_ms};
use crate::ratelimit::SharedRateLimiter;
use crate::sender::{Sender, http_client};

/// What one run of the delivery loop did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct RunStats {
    /// Deliveries the destinations accepted.
    pub delivered: u64,
    /// Failed attempts that were scheduled for a retry.
    pub retried: u64,
    /// Deliveries that went to the dead-letter list.
    pub dead: u64,
}

/// Routes alerts to destinations through the durable outbox.
pub struct Notifier {
    config: NotifyConfig,
    outbox: Outbox,
    senders: BTreeMap<String, Sender>,
    limiters: BTreeMap<String, SharedRateLimiter>,
    backoff: Backoff,
    wake: tokio::sync::Notify,
    rng: Mutex<fastrand::Rng>,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier")
            .field("outbox", &self.outbox)
            .field("destinations", &self.senders.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// How often the loop looks for newly due deliveries while others are in flight.
const TICK: Duration = Duration::from_millis(200);
/// How long a shutdown waits for deliveries in flight.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(15);

impl Notifier {
    /// Opens the outbox at `outbox_path` (which wins over `config.outbox.path`) and prepares
    /// every destination. Waiting deliveries to destinations the config no longer has go to
    /// the dead-letter list.
    pub fn open(config: NotifyConfig, outbox_path: &Path) -> Result<Notifier, NotifyError> {
        let outbox = Outbox::open(outbox_path)?;
        let http = http_client();
        let mut names: Vec<String> = config.destinations.keys().cloned().collect();
        if !names.iter().any(|n| n == DEFAULT_DESTINATION) {
            names.push(DEFAULT_DESTINATION.to_owned());
        }
        let mut senders = BTreeMap::new();
        let mut limiters = BTreeMap::new();
        for name in &names {
            let Some(dest) = config.destination(name) else {
                continue;
            };
            if let Some(rate) = dest.rate_per_second {
                limiters.insert(name.clone(), SharedRateLimiter::new(rate));
            }
            senders.insert(name.clone(), Sender::new(dest, http.clone()));
        }
        let known: Vec<&str> = names.iter().map(String::as_str).collect();
        let buried = outbox.bury_unknown(&known)?;
        if buried > 0 {
            tracing::warn!(
                count = buried,
                "deliveries to destinations no longer configured moved to the dead-letter list"
            );
        }
        let pruned = outbox.prune(config.outbox.retain_sent)?;
        tracing::debug!(pruned, path = %outbox_path.display(), "outbox opened");
        let backoff = Backoff {
            base: config.outbox.base_delay,
            max: config.outbox.max_delay,
        };
        Ok(Notifier {
            config,
            outbox,
            senders,
            limiters,
            backoff,
            wake: tokio::sync::Notify::new(),
            rng: Mutex::new(fastrand::Rng::new()),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &NotifyConfig {
        &self.config
    }

    /// The outbox (for diagnostics and tests).
    pub fn outbox(&self) -> &Outbox {
        &self.outbox
    }

    fn targets(&self, alert: &Alert, now: i64) -> Vec<(String, Schedule)> {
        self.config
            .route(alert)
            .into_iter()
            .map(|(name, digest)| {
                let schedule = match digest {
                    None => Schedule::Now,
                    Some(d) => Schedule::Digest {
                        start_ms: digest::window_start(now, d.minutes),
                        len_ms: i64::from(d.minutes) * 60_000,
                    },
                };
                (name, schedule)
            })
            .collect()
    }

    /// Routes an alert and writes its deliveries to the outbox (fsynced before returning).
    /// Returns how many deliveries were new: 0 when this alert was enqueued before.
    pub fn enqueue(&self, alert: &Alert) -> Result<usize, NotifyError> {
        self.enqueue_batch(std::slice::from_ref(alert))
    }

    /// [`Notifier::enqueue`] for many alerts in one transaction (one fsync).
    pub fn enqueue_batch(&self, alerts: &[Alert]) -> Result<usize, NotifyError> {
        let now = now_ms();
        let items: Vec<(&Alert, Vec<(String, Schedule)>)> =
            alerts.iter().map(|a| (a, self.targets(a, now))).collect();
        let added = self.outbox.enqueue(&items)?;
        if added > 0 {
            self.wake.notify_one();
        }
        tracing::debug!(alerts = alerts.len(), deliveries = added, "enqueued");
        Ok(added)
    }

    /// Enqueues an alert for the named destinations (a rule that names its own), bypassing
    /// routes.
    pub fn enqueue_to(&self, alert: &Alert, destinations: &[&str]) -> Result<usize, NotifyError> {
        for name in destinations {
            if !self.senders.contains_key(*name) {
                return Err(NotifyError::UnknownDestination((*name).to_owned()));
            }
        }
        let targets = destinations
            .iter()
            .map(|n| ((*n).to_owned(), Schedule::Now))
            .collect();
        let added = self.outbox.enqueue(&[(alert, targets)])?;
        if added > 0 {
            self.wake.notify_one();
        }
        Ok(added)
    }

    /// The dead-letter list (`trailwatch alerts dead`).
    pub fn dead_letters(&self) -> Result<Vec<DeadLetter>, NotifyError> {
        Ok(self.outbox.dead_letters()?)
    }

    /// Puts dead letters back in the queue with a fresh attempt budget
    /// (`trailwatch alerts retry`); a running loop picks them up at once.
    pub fn retry_dead(&self, selector: &RetrySelector) -> Result<usize, NotifyError> {
        let n = self.outbox.retry_dead(selector)?;
        if n > 0 {
            self.wake.notify_one();
        }
        Ok(n)
    }

    /// Row counts by state.
    pub fn counts(&self) -> Result<OutboxCounts, NotifyError> {
        Ok(self.outbox.counts()?)
    }

    /// Sends a sample alert straight to one destination, bypassing the outbox, and reports
    /// the result of that single attempt (`trailwatch alerts test DESTINATION`).
    pub async fn send_test(&self, destination: &str) -> Result<Alert, NotifyError> {
        let sender = self
            .senders
            .get(destination)
            .ok_or_else(|| NotifyError::UnknownDestination(destination.to_owned()))?;
        let mut alert = crate::sample_alert(
            "trailwatch-test",
            Severity::Info,
            &format!("trailwatch-test-{}", now_ms()),
        );
        alert.title = format!("Test alert from trailwatch to {destination}");
        alert.body = "This is a test. If you can read it, the destination works.".to_owned();
        if let Some(limiter) = self.limiters.get(destination) {
            limiter.acquire().await;
        }
        let id = crate::outbox::delivery_id(&alert.dedup_key, destination);
        sender
            .send(&alert, &id)
            .await
            .map_err(|source| NotifyError::Delivery {
                dedup_key: alert.dedup_key.clone(),
                source,
            })?;
        Ok(alert)
    }

    /// Delivers until no delivery is waiting (retries included: this waits for their
    /// backoff). Digests whose window has not closed are left for later.
    pub async fn run_until_idle(&self) -> Result<RunStats, NotifyError> {
        self.drive(true, std::future::pending::<()>()).await
    }

    /// Delivers until `shutdown` completes, then waits (up to 15 s) for deliveries in
    /// flight. Run it as a task beside the pipeline: `tokio::spawn(async move {
    /// notifier.run(token.cancelled()).await })` with the notifier in an `Arc`.
    pub async fn run(&self, shutdown: impl Future<Output = ()>) -> Result<RunStats, NotifyError> {
        self.drive(false, shutdown).await
    }

    async fn attempt(&self, delivery: Delivery) -> (Delivery, Result<(), DeliveryError>) {
        let Some(sender) = self.senders.get(&delivery.destination) else {
            let err = DeliveryError::UnknownDestination(delivery.destination.clone());
            return (delivery, Err(err));
        };
        if let Some(limiter) = self.limiters.get(&delivery.destination) {
            limiter.acquire().await;
        }
        let result = sender.send(&delivery.alert, &delivery.delivery_id).await;
        (delivery, result)
    }

    fn settle(
        &self,
        delivery: &Delivery,
        result: Result<(), DeliveryError>,
        stats: &mut RunStats,
        paused_until: &mut HashMap<String, i64>,
    ) -> Result<(), NotifyError> {
        let attempt = delivery.attempts + 1;
        match result {
            Ok(()) => {
                self.outbox.mark_sent(delivery.id)?;
                stats.delivered += 1;
                tracing::info!(
                    destination = %delivery.destination,
                    dedup_key = %delivery.dedup_key,
                    delivery_id = %delivery.delivery_id,
                    attempt,
                    "alert delivered"
                );
            }
            Err(err) => {
                let message = err.to_string();
                if !err.retryable() || attempt >= self.config.outbox.max_attempts {
                    self.outbox.mark_dead(delivery.id, &message)?;
                    stats.dead += 1;
                    tracing::error!(
                        destination = %delivery.destination,
                        dedup_key = %delivery.dedup_key,
                        attempt,
                        retryable = err.retryable(),
                        error = %message,
                        "delivery gave up; moved to the dead-letter list"
                    );
                } else {
                    let delay = {
                        let mut rng = self.rng.lock().unwrap_or_else(|p| p.into_inner());
                        self.backoff.delay(attempt, err.retry_after(), &mut rng)
                    };
                    let next = now_ms() + delay.as_millis() as i64;
                    if err.retry_after().is_some() {
                        // The destination asked everyone to wait, not just this delivery.
                        paused_until.insert(delivery.destination.clone(), next);
                    }
                    self.outbox.mark_retry(delivery.id, next, &message)?;
                    stats.retried += 1;
                    tracing::warn!(
                        destination = %delivery.destination,
                        dedup_key = %delivery.dedup_key,
                        attempt,
                        retry_in_ms = delay.as_millis() as u64,
                        error = %message,
                        "delivery failed; will retry"
                    );
                }
            }
        }
        Ok(())
    }

    async fn drive(
        &self,
        until_idle: bool,
        shutdown: impl Future<Output = ()>,
    ) -> Result<RunStats, NotifyError> {
        let mut shutdown = pin!(shutdown);
        let mut stats = RunStats::default();
        let mut in_flight: HashSet<i64> = HashSet::new();
        let mut per_destination: HashMap<String, usize> = HashMap::new();
        let mut paused_until: HashMap<String, i64> = HashMap::new();
        let mut running = FuturesUnordered::new();
        let concurrency = self.config.outbox.concurrency;
        let mut digests_checked_ms: Option<i64> = None;
        loop {
            let now = now_ms();
            if digests_checked_ms.is_none_or(|t| now - t >= 1000) {
                self.outbox.close_digests(now, |dest, start, len, alerts| {
                    digest::combine(dest, start, (len / 60_000) as u32, &alerts)
                })?;
                digests_checked_ms = Some(now);
            }
            for name in self.senders.keys() {
                if paused_until.get(name).is_some_and(|t| *t > now) {
                    continue;
                }
                let busy = per_destination.get(name).copied().unwrap_or(0);
                if busy >= concurrency {
                    continue;
                }
                for delivery in self
                    .outbox
                    .due(Some(name), now, concurrency - busy, &in_flight)?
                {
                    in_flight.insert(delivery.id);
                    *per_destination.entry(name.clone()).or_default() += 1;
                    running.push(self.attempt(delivery));
                }
            }
            if running.is_empty() {
                if until_idle && self.outbox.counts()?.pending == 0 {
                    return Ok(stats);
                }
                let wait = match self.outbox.next_due_ms()? {
                    Some(t) => Duration::from_millis((t - now).clamp(1, 1000) as u64),
                    None => Duration::from_secs(1),
                };
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    () = self.wake.notified() => {}
                    () = &mut shutdown => return Ok(stats),
                }
                continue;
            }
            tokio::select! {
                Some((delivery, result)) = running.next() => {
                    in_flight.remove(&delivery.id);
                    if let Some(n) = per_destination.get_mut(&delivery.destination) {
                        *n = n.saturating_sub(1);
                    }
                    self.settle(&delivery, result, &mut stats, &mut paused_until)?;
                    // Settle everything else that is already finished before refilling.
                    while let Some(Some((delivery, result))) = futures_util::FutureExt::now_or_never(running.next()) {
                        in_flight.remove(&delivery.id);
                        if let Some(n) = per_destination.get_mut(&delivery.destination) {
                            *n = n.saturating_sub(1);
                        }
                        self.settle(&delivery, result, &mut stats, &mut paused_until)?;
                    }
                }
                () = tokio::time::sleep(TICK) => {}
                () = &mut shutdown => {
                    let grace = tokio::time::sleep(SHUTDOWN_GRACE);
                    let mut grace = pin!(grace);
                    loop {
                        tokio::select! {
                            next = running.next() => match next {
                                Some((delivery, result)) => {
                                    self.settle(&delivery, result, &mut stats, &mut paused_until)?;
                                }
                                None => break,
                            },
                            () = &mut grace => break,
                        }
                    }
                    return Ok(stats);
                }
            }
        }
    }
}

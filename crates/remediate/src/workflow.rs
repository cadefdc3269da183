//! The remediator: prepares plans, queues jobs, and runs them step by step with retries,
//! `on_error` catch paths, guards and the audit trail.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use trailwatch_actions::{ActionKind, ErrorClass, Request};
use trailwatch_alert::{Alert, PlannedStep, Severity};

use crate::aws::{Aws, CallError};
use crate::config::{Mode, RemediationConfig};
use crate::guard::{SelfPrincipals, static_guards};
use crate::store::{Job, JobStatus, NewEntry, Store};
use crate::{RemediateError, approval};

/// Where `notify` steps send their message: the service hands alerts to its outbox.
pub trait Notifier: Send + Sync {
    /// Queues an alert for delivery (durably, before returning).
    fn notify(&self, alert: Alert) -> Result<(), String>;
}

/// How one step ended.
#[derive(Debug, Clone, PartialEq)]
pub struct StepOutcome {
    /// The step.
    pub step: String,
    /// Its action.
    pub action: String,
    /// Attempts made.
    pub attempts: u32,
    /// The response, when it succeeded.
    pub response: Option<Value>,
    /// The last error, when it failed.
    pub error: Option<String>,
    /// Whether the step was skipped (already done before a restart, or a guard).
    pub skipped: bool,
}

/// Runs remediation for the service.
pub struct Remediator {
    config: RemediationConfig,
    store: Mutex<Store>,
    aws: Aws,
    me: SelfPrincipals,
    actor: String,
    approval_key: Option<Vec<u8>>,
    http: reqwest::Client,
    notifier: Option<Arc<dyn Notifier>>,
}

impl std::fmt::Debug for Remediator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remediator")
            .field("actor", &self.actor)
            .finish_non_exhaustive()
    }
}

/// The job id for an alert: stable, so a repeated alert is the same job.
pub fn job_id(alert: &Alert) -> String {
    let digest = Sha256::digest(alert.dedup_key.as_bytes());
    format!("rem-{}", &hex::encode(digest)[..16])
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl Remediator {
    /// A remediator over an open store. `caller_arn` is what STS GetCallerIdentity said
    /// (see [`Remediator::identify`]), if known.
    pub fn new(
        config: RemediationConfig,
        store: Store,
        caller_arn: Option<String>,
        notifier: Option<Arc<dyn Notifier>>,
    ) -> Remediator {
        let me = SelfPrincipals::new(caller_arn.as_deref(), &config.self_principals);
        let approval_key = config
            .approval_secret_env
            .as_ref()
            .and_then(|var| std::env::var(var).ok())
            .filter(|k| !k.is_empty())
            .map(String::into_bytes);
        Remediator {
            aws: Aws::new(config.aws.clone()),
            config,
            store: Mutex::new(store),
            me,
            actor: caller_arn.unwrap_or_else(|| "trailwatch".to_owned()),
            approval_key,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(15))
                .build()
                .unwrap_or_default(),
            notifier,
        }
    }

    /// With these base credentials instead of the standard chain.
    pub fn with_credentials(
        mut self,
        credentials: aws_credential_types::provider::SharedCredentialsProvider,
    ) -> Remediator {
        self.aws = Aws::new(self.config.aws.clone()).with_credentials(credentials);
        self
    }

    /// Asks STS who trailwatch is and adds that principal (and its role, for an assumed-role
    /// session) to its own. A failure is logged and remediation carries on with the
    /// configured `self_principals` only.
    pub async fn identify(&mut self) -> Option<String> {
        match self.aws.caller_arn().await {
            Ok(arn) if !arn.is_empty() => {
                tracing::info!(
                    arn,
                    "remediation acts as this principal; its own events are never remediated"
                );
                self.me = SelfPrincipals::new(Some(&arn), &self.config.self_principals);
                self.actor = arn.clone();
                Some(arn)
            }
            Ok(_) => None,
            Err(e) => {
                tracing::warn!(error = %e, "cannot learn trailwatch's own principal from STS; relying on remediation.self_principals");
                None
            }
        }
    }

    /// Whether any rule may act (approve or enforce): only then is STS asked who we are.
    pub fn may_act(&self) -> bool {
        self.config.may_act()
    }

    /// The principals treated as trailwatch's own.
    pub fn self_principals(&self) -> &[String] {
        self.me.arns()
    }

    fn store(&self) -> std::sync::MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Fixes the plan in an alert before it is delivered: mode, job id, approval links, or
    /// why nothing will run.
    pub fn prepare(&self, alert: &mut Alert) {
        let Some(plan) = alert.remediation.as_ref() else {
            return;
        };
        let mode = self.config.mode_for(&alert.rule_id);
        let id = job_id(alert);
        let own = self.me.own_event(alert);
        // Guards look at what would change: a key id in a notify title or a webhook URL is
        // not a resource an allow list of `sg-*` should refuse.
        let resources: Vec<String> = plan
            .steps
            .iter()
            .chain(&plan.catch)
            .filter(|s| ActionKind::from_name(&s.action).is_none_or(ActionKind::mutates))
            .map(|s| s.resource.clone())
            .collect();
        let skipped = own.or_else(|| static_guards(&self.config, alert, &resources));
        let links = match (mode, &self.config.approval_base_url, &self.approval_key) {
            (Mode::Approve, Some(base), Some(key)) if skipped.is_none() => {
                Some(approval::links(base, key, &id))
            }
            _ => None,
        };
        let plan = alert.remediation.as_mut().expect("checked above");
        plan.mode = mode.as_str().to_owned();
        plan.job_id = Some(id);
        plan.skipped = skipped;
        if let Some((approve, reject)) = links {
            plan.approve_url = Some(approve);
            plan.reject_url = Some(reject);
        }
    }

    /// Queues the jobs of prepared alerts (idempotent) and audits their plans. Returns how
    /// many were new.
    pub fn submit(&self, alerts: &[Alert]) -> Result<usize, RemediateError> {
        let mut new = 0;
        let mut store = self.store();
        for alert in alerts {
            let Some(plan) = &alert.remediation else {
                continue;
            };
            let Some(id) = plan.job_id.clone() else {
                continue;
            };
            let mode = self.config.mode_for(&alert.rule_id);
            let status = match (&plan.skipped, mode) {
                (Some(_), _) => JobStatus::Skipped,
                (None, Mode::DryRun) => JobStatus::DryRun,
                (None, Mode::Approve) => JobStatus::AwaitingApproval,
                (None, Mode::Enforce) => JobStatus::Queued,
            };
            let job = Job {
                id,
                alert: alert.clone(),
                status,
                created_ms: now_ms(),
                expires_ms: (status == JobStatus::AwaitingApproval)
                    .then(|| now_ms() + self.config.approval_expires.as_millis() as i64),
                decided_by: None,
            };
            if !store.insert_job(&job)? {
                continue;
            }
            new += 1;
            store.audit(
                &job,
                NewEntry {
                    status: "planned",
                    actor: &self.actor,
                    reason: Some(format!(
                        "rule {} matched event {} (mode {})",
                        alert.rule_id,
                        alert.event_id,
                        mode.as_str()
                    )),
                    request: Some(serde_json::to_value(plan).unwrap_or(Value::Null)),
                    ..NewEntry::default()
                },
            )?;
            let (entry_status, reason) = match status {
                JobStatus::Skipped => ("skipped", plan.skipped.clone()),
                JobStatus::DryRun => ("dry-run", Some("dry-run: nothing runs until the config sets mode enforce or approve for this rule".into())),
                JobStatus::AwaitingApproval => ("awaiting-approval", Some(format!("approve with `trailwatch remediation approve {}`", job.id))),
                _ => ("queued", None),
            };
            store.audit(
                &job,
                NewEntry {
                    status: entry_status,
                    actor: &self.actor,
                    reason: reason.clone(),
                    ..NewEntry::default()
                },
            )?;
            for step in &plan.steps {
                tracing::info!(
                    job = %job.id, rule = %alert.rule_id, event = %alert.event_id, step = %step.id,
                    action = %step.action, resource = %step.resource, calls = ?step.calls,
                    status = entry_status, "remediation planned"
                );
            }
        }
        Ok(new)
    }

    /// Marks approval requests whose time ran out.
    pub fn expire_lapsed(&self) -> Result<usize, RemediateError> {
        let mut store = self.store();
        let lapsed = store.lapsed(now_ms())?;
        let mut n = 0;
        for job in lapsed {
            if store.transition(
                &job.id,
                &[JobStatus::AwaitingApproval],
                JobStatus::Expired,
                None,
            )? {
                n += 1;
                store.audit(
                    &job,
                    NewEntry {
                        status: "expired",
                        actor: &self.actor,
                        reason: Some("nobody approved it in time".into()),
                        ..NewEntry::default()
                    },
                )?;
            }
        }
        Ok(n)
    }

    /// The settings it runs with.
    pub fn config(&self) -> &RemediationConfig {
        &self.config
    }

    /// Whether alerts carry approval links: a base URL and its signing key are set.
    pub fn links_enabled(&self) -> bool {
        self.config.approval_base_url.is_some() && self.approval_key.is_some()
    }

    /// A job, by id.
    pub fn job(&self, id: &str) -> Result<Option<Job>, RemediateError> {
        self.store().job(id)
    }

    /// Whether an approval link's signature is the one trailwatch made for that decision.
    pub fn link_is_valid(&self, id: &str, decision: &str, sig: &str) -> bool {
        self.approval_key
            .as_deref()
            .is_some_and(|key| approval::verify(key, id, decision, sig))
    }

    /// Approves or rejects through a signed link.
    pub fn decide_signed(
        &self,
        id: &str,
        decision: &str,
        sig: &str,
    ) -> Result<JobStatus, RemediateError> {
        let key = self
            .approval_key
            .as_deref()
            .ok_or_else(|| RemediateError::BadSignature(id.to_owned()))?;
        if !approval::verify(key, id, decision, sig) {
            return Err(RemediateError::BadSignature(id.to_owned()));
        }
        decide(
            &mut self.store(),
            id,
            decision == "approve",
            "approval link",
        )
    }

    /// Runs every runnable job until none is left; returns (job, final status) per job.
    pub async fn run_until_idle(&self) -> Result<Vec<(String, JobStatus)>, RemediateError> {
        let mut done = Vec::new();
        while let Some(result) = self.run_next().await? {
            done.push(result);
        }
        Ok(done)
    }

    /// Runs the next queued (or interrupted) job, if any.
    pub async fn run_next(&self) -> Result<Option<(String, JobStatus)>, RemediateError> {
        self.expire_lapsed()?;
        let Some(job) = self.store().next_runnable()? else {
            return Ok(None);
        };
        let plan = job.alert.remediation.clone().unwrap_or_default();
        // The tag is read on the live resource before anything else, so a skipped job does
        // not count against the rate limit.
        let every_step: Vec<PlannedStep> = plan.steps.iter().chain(&plan.catch).cloned().collect();
        if let Some(why) = self.ignore_tag_guard(&job, &every_step).await {
            return self.finish(&job, JobStatus::Skipped, Some(why)).map(Some);
        }
        if job.status == JobStatus::Queued {
            if let Some((max, per)) = self.config.rate_limit {
                let since = now_ms() - per.as_millis() as i64;
                let runs = self.store().runs_since(&job.alert.rule_id, since)?;
                if runs >= u64::from(max) {
                    return self
                        .finish(
                            &job,
                            JobStatus::Skipped,
                            Some(format!(
                                "rate limit: rule {} already ran {runs} times within {}",
                                job.alert.rule_id,
                                humantime::format_duration(per)
                            )),
                        )
                        .map(Some);
                }
            }
            let mut store = self.store();
            if !store.transition(&job.id, &[JobStatus::Queued], JobStatus::Running, None)? {
                return Ok(Some((job.id, job.status)));
            }
            store.audit(
                &job,
                NewEntry {
                    status: "started",
                    actor: &self.actor,
                    reason: job
                        .decided_by
                        .as_ref()
                        .map(|by| format!("approved by {by}")),
                    ..NewEntry::default()
                },
            )?;
        }
        // Steps that succeeded before a restart are not repeated.
        let done: Vec<String> = self
            .store()
            .audit_entries(Some(&job.id))?
            .into_iter()
            .filter(|e| e.status == "succeeded")
            .filter_map(|e| e.step)
            .collect();

        let mut outcomes: Vec<StepOutcome> = Vec::new();
        let mut failed = false;
        // (in catch list?, index)
        let mut cursor: Option<(bool, usize)> = (!plan.steps.is_empty()).then_some((false, 0));
        let mut visited = 0;
        while let Some((in_catch, i)) = cursor {
            visited += 1;
            let list = if in_catch { &plan.catch } else { &plan.steps };
            let Some(step) = list.get(i) else { break };
            if visited > plan.steps.len() + plan.catch.len() + 1 {
                break; // an on_error cycle; every step ran once
            }
            let outcome = if done.contains(&step.id) {
                StepOutcome {
                    step: step.id.clone(),
                    action: step.action.clone(),
                    attempts: 0,
                    response: None,
                    error: None,
                    skipped: true,
                }
            } else {
                self.run_step(&job, step, &outcomes).await?
            };
            let ok = outcome.error.is_none();
            outcomes.push(outcome);
            cursor = if ok {
                (i + 1 < list.len()).then_some((in_catch, i + 1))
            } else {
                failed = true;
                step.on_error.as_ref().and_then(|target| {
                    plan.steps
                        .iter()
                        .position(|s| &s.id == target)
                        .map(|p| (false, p))
                        .or_else(|| {
                            plan.catch
                                .iter()
                                .position(|s| &s.id == target)
                                .map(|p| (true, p))
                        })
                })
            };
        }
        let status = if failed {
            JobStatus::Failed
        } else {
            JobStatus::Succeeded
        };
        let summary = outcomes
            .iter()
            .map(|o| format!("{}: {}", o.step, o.error.as_deref().unwrap_or("ok")))
            .collect::<Vec<_>>()
            .join("; ");
        self.finish(&job, status, Some(summary)).map(Some)
    }

    fn finish(
        &self,
        job: &Job,
        status: JobStatus,
        reason: Option<String>,
    ) -> Result<(String, JobStatus), RemediateError> {
        let mut store = self.store();
        store.transition(
            &job.id,
            &[JobStatus::Queued, JobStatus::Running],
            status,
            None,
        )?;
        store.audit(
            job,
            NewEntry {
                status: status.as_str(),
                actor: &self.actor,
                reason,
                ..NewEntry::default()
            },
        )?;
        tracing::info!(job = %job.id, rule = %job.alert.rule_id, status = status.as_str(), "remediation finished");
        Ok((job.id.clone(), status))
    }

    async fn ignore_tag_guard(&self, job: &Job, steps: &[PlannedStep]) -> Option<String> {
        for step in steps {
            let Some(kind) = ActionKind::from_name(&step.action) else {
                continue;
            };
            if !kind.mutates() {
                continue;
            }
            let Ok(request) = trailwatch_actions::plan(kind, &step.params) else {
                continue;
            };
            match self
                .aws
                .resource_tag(
                    &job.alert.account,
                    &job.alert.region,
                    &request,
                    &self.config.ignore_tag,
                )
                .await
            {
                Ok(Some(value)) => {
                    return Some(format!(
                        "{} is tagged {}={value}",
                        request.resource(),
                        self.config.ignore_tag
                    ));
                }
                Ok(None) => {}
                // A guard that cannot be checked must not let the action through blind.
                Err(e) => {
                    return Some(format!(
                        "cannot read the tags of {} ({e}); not acting",
                        request.resource()
                    ));
                }
            }
        }
        None
    }

    async fn run_step(
        &self,
        job: &Job,
        step: &PlannedStep,
        so_far: &[StepOutcome],
    ) -> Result<StepOutcome, RemediateError> {
        let mut outcome = StepOutcome {
            step: step.id.clone(),
            action: step.action.clone(),
            attempts: 0,
            response: None,
            error: None,
            skipped: false,
        };
        let entry = |status: &'static str,
                     reason: Option<String>,
                     request: Option<Value>,
                     response: Option<Value>| NewEntry {
            step: Some(&step.id),
            action: Some(&step.action),
            status,
            actor: &self.actor,
            reason,
            request,
            response,
        };
        let request = match (&step.invalid, ActionKind::from_name(&step.action)) {
            (Some(why), _) => Err(why.clone()),
            (None, None) => Err(format!("unknown action {}", step.action)),
            (None, Some(kind)) => {
                trailwatch_actions::plan(kind, &step.params).map_err(|e| e.to_string())
            }
        };
        let request = match request {
            Ok(r) => r,
            Err(why) => {
                self.store().audit(
                    job,
                    entry(
                        "failed",
                        Some(why.clone()),
                        Some(Value::Object(step.params.clone())),
                        None,
                    ),
                )?;
                outcome.error = Some(why);
                return Ok(outcome);
            }
        };
        let request_json =
            json!({"calls": step.calls, "params": step.params, "resource": step.resource});
        let retry_on: Vec<ErrorClass> = step
            .retry
            .retry_on
            .iter()
            .filter_map(|c| ErrorClass::from_name(c))
            .collect();
        let max = step.retry.max_attempts.max(1);
        loop {
            outcome.attempts += 1;
            self.store().audit(
                job,
                entry(
                    "started",
                    Some(format!("attempt {} of {max}", outcome.attempts)),
                    Some(request_json.clone()),
                    None,
                ),
            )?;
            match self.call(job, &request, step, so_far).await {
                Ok(response) => {
                    self.store()
                        .audit(job, entry("succeeded", None, None, Some(response.clone())))?;
                    tracing::info!(job = %job.id, step = %step.id, action = %step.action, resource = %step.resource, "remediation step succeeded");
                    outcome.response = Some(response);
                    return Ok(outcome);
                }
                Err(e) => {
                    let retryable =
                        e.class != ErrorClass::AccessDenied && retry_on.contains(&e.class);
                    let last = outcome.attempts >= max || !retryable;
                    let why = if last && !retryable {
                        format!("{e} (not retried: {} errors are not in retry_on)", e.class)
                    } else if last {
                        format!("{e} (gave up after {} attempts)", outcome.attempts)
                    } else {
                        e.to_string()
                    };
                    self.store().audit(
                        job,
                        entry(
                            if last { "failed" } else { "retrying" },
                            Some(why.clone()),
                            None,
                            None,
                        ),
                    )?;
                    if last {
                        tracing::warn!(job = %job.id, step = %step.id, action = %step.action, error = %why, "remediation step failed");
                        outcome.error = Some(why);
                        return Ok(outcome);
                    }
                    let base = step
                        .retry
                        .backoff_ms
                        .saturating_mul(1 << (outcome.attempts - 1).min(10));
                    let jitter = fastrand::u64(0..=base / 5 + 1);
                    tokio::time::sleep(Duration::from_millis(base + jitter)).await;
                }
            }
        }
    }

    async fn call(
        &self,
        job: &Job,
        request: &Request,
        step: &PlannedStep,
        so_far: &[StepOutcome],
    ) -> Result<Value, CallError> {
        match request {
            Request::Notify { title, severity } => {
                self.notify(job, step, title.as_deref(), severity.as_deref(), so_far)
            }
            Request::InvokeWebhook { url, secret_env } => {
                self.webhook(job, url, secret_env.as_deref(), so_far).await
            }
            other => {
                self.aws
                    .execute(
                        &job.alert.account,
                        &job.alert.region,
                        other,
                        &self.config.security_groups,
                        self.config.archive.as_deref(),
                    )
                    .await
            }
        }
    }

    fn notify(
        &self,
        job: &Job,
        step: &PlannedStep,
        title: Option<&str>,
        severity: Option<&str>,
        so_far: &[StepOutcome],
    ) -> Result<Value, CallError> {
        let Some(notifier) = &self.notifier else {
            return Err(CallError {
                class: ErrorClass::Client,
                code: None,
                message: "no destinations to notify (no outbox)".into(),
            });
        };
        let failed = so_far.iter().any(|o| o.error.is_some());
        let mut alert = job.alert.clone();
        alert.title = match title {
            Some(t) => t.to_owned(),
            None => format!(
                "Remediation {} for: {}",
                if failed { "FAILED" } else { "done" },
                job.alert.title
            ),
        };
        if let Some(sev) = severity.and_then(|s| s.parse::<Severity>().ok()) {
            alert.severity = sev;
        }
        let mut body = format!(
            "{}\n\nRemediation {} ({} mode):\n",
            job.alert.body.trim_end(),
            job.id,
            job.alert
                .remediation
                .as_ref()
                .map(|r| r.mode.as_str())
                .unwrap_or("")
        );
        for o in so_far {
            let result = match (&o.error, &o.response) {
                (Some(e), _) => format!("FAILED after {} attempt(s): {e}", o.attempts),
                (None, _) if o.skipped => "done earlier".to_owned(),
                (None, Some(r)) => r
                    .get("text")
                    .and_then(Value::as_str)
                    .map(|t| format!("ok\n{t}"))
                    .unwrap_or_else(|| format!("ok {r}")),
                (None, None) => "ok".to_owned(),
            };
            body.push_str(&format!("- {} ({}): {result}\n", o.step, o.action));
        }
        alert.body = body;
        alert.dedup_key = format!("{}:remediation:{}", job.alert.dedup_key, step.id);
        alert
            .fields
            .insert("remediation_job".into(), job.id.clone());
        alert.fields.insert(
            "remediation_outcome".into(),
            if failed {
                "failed".into()
            } else {
                "succeeded".into()
            },
        );
        if let Some(activity) = so_far
            .iter()
            .filter_map(|o| o.response.as_ref())
            .find_map(|r| r.get("text").and_then(Value::as_str))
        {
            alert
                .fields
                .insert("key_activity".into(), activity.to_owned());
        }
        alert.remediation = None;
        let dedup_key = alert.dedup_key.clone();
        notifier.notify(alert).map_err(|e| CallError {
            class: ErrorClass::Server,
            code: None,
            message: format!("outbox: {e}"),
        })?;
        Ok(json!({"queued": dedup_key}))
    }

    async fn webhook(
        &self,
        job: &Job,
        url: &str,
        secret_env: Option<&str>,
        so_far: &[StepOutcome],
    ) -> Result<Value, CallError> {
        let results: Vec<Value> = so_far.iter().map(|o| json!({"step": o.step, "action": o.action, "error": o.error, "response": o.response})).collect();
        let body =
            serde_json::to_vec(&json!({"job_id": job.id, "alert": job.alert, "results": results}))
                .unwrap_or_default();
        let mut req = self
            .http
            .post(url)
            .header("content-type", "application/json")
            .header("x-trailwatch-job", &job.id);
        if let Some(var) = secret_env {
            let key = std::env::var(var).map_err(|_| CallError {
                class: ErrorClass::Client,
                code: None,
                message: format!("webhook secret variable {var} is not set"),
            })?;
            req = req.header(
                "x-trailwatch-signature",
                format!("sha256={}", approval::sign_body(key.as_bytes(), &body)),
            );
        }
        let resp = req.body(body).send().await.map_err(|e| CallError {
            class: ErrorClass::Network,
            code: None,
            message: format!("POST {url}: {e}"),
        })?;
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        if (200..300).contains(&status) {
            let reply = serde_json::from_str::<Value>(&text).unwrap_or(Value::String(text));
            Ok(json!({"status": status, "reply": reply}))
        } else {
            Err(CallError {
                class: ErrorClass::classify(None, Some(status)),
                code: Some(format!("HTTP {status}")),
                message: format!("POST {url}: {}", text.chars().take(200).collect::<String>()),
            })
        }
    }
}

/// Approves or rejects a job waiting for approval (the CLI uses this on the store alone).
pub fn decide(
    store: &mut Store,
    id: &str,
    approve: bool,
    by: &str,
) -> Result<JobStatus, RemediateError> {
    let job = store
        .job(id)?
        .ok_or_else(|| RemediateError::NoSuchJob(id.to_owned()))?;
    if job.expires_ms.is_some_and(|t| t <= now_ms()) && job.status == JobStatus::AwaitingApproval {
        store.transition(id, &[JobStatus::AwaitingApproval], JobStatus::Expired, None)?;
        store.audit(
            &job,
            NewEntry {
                status: "expired",
                actor: by,
                reason: Some("the approval window had closed".into()),
                ..NewEntry::default()
            },
        )?;
        return Err(RemediateError::NotAwaiting {
            id: id.to_owned(),
            status: JobStatus::Expired.as_str(),
        });
    }
    let to = if approve {
        JobStatus::Queued
    } else {
        JobStatus::Rejected
    };
    if !store.transition(id, &[JobStatus::AwaitingApproval], to, Some(by))? {
        return Err(RemediateError::NotAwaiting {
            id: id.to_owned(),
            status: job.status.as_str(),
        });
    }
    store.audit(
        &job,
        NewEntry {
            status: if approve { "approved" } else { "rejected" },
            actor: by,
            ..NewEntry::default()
        },
    )?;
    Ok(to)
}

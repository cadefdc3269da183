//! Remediation in the binary: the `remediation:` section, where `notify` steps go (the
//! outbox, or stdout), the executor task beside the pipeline, and the commands
//! `trailwatch remediation list | log | approve | reject` and `trailwatch iam-policy`.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use trailwatch_actions::ActionKind;
use trailwatch_alert::Alert;
use trailwatch_config::Config;
use trailwatch_notify::Notifier;
use trailwatch_remediate::store::verify_chain;
use trailwatch_remediate::{
    AuditEntry, Job, JobStatus, Mode, RemediateError, RemediationConfig, Remediator, Store,
};
use trailwatch_rules::RuleSet;
use trailwatch_sources::CancellationToken;

use crate::cli::{
    EXIT_FAILED_CHECK, EXIT_OK, Format, IamPolicyArgs, RemediationCommand, RemediationStore,
};
use crate::output::write_alert;
use crate::ruleset::load_config;
use crate::state;

/// How often the executor looks for work nobody woke it for (a CLI approval, a job a
/// crash interrupted, an approval that lapsed).
const POLL_EVERY: Duration = Duration::from_secs(2);

/// Reads the `remediation:` section.
pub fn config_of(config: &Config) -> anyhow::Result<RemediationConfig> {
    RemediationConfig::from_section(config.section("remediation"))
        .map_err(|e| anyhow::anyhow!("invalid config:\n{e}"))
}

/// The remediation database in a state folder.
pub fn store_path(state_dir: &Path) -> PathBuf {
    state_dir.join("remediation.sqlite")
}

/// `notify` steps through the durable outbox, like any alert.
pub struct OutboxNotify(pub Arc<Notifier>);

impl trailwatch_remediate::Notifier for OutboxNotify {
    fn notify(&self, alert: Alert) -> Result<(), String> {
        self.0
            .enqueue_batch(std::slice::from_ref(&alert))
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

/// `notify` steps printed, for `watch` without destinations.
pub struct PrintNotify(pub Format);

impl trailwatch_remediate::Notifier for PrintNotify {
    fn notify(&self, alert: Alert) -> Result<(), String> {
        let mut out = std::io::stdout().lock();
        write_alert(&mut out, &alert, self.0)
            .and_then(|()| out.flush())
            .map_err(|e| e.to_string())
    }
}

/// Opens the remediator of a service: its store in the state folder, and, when any rule
/// may act, trailwatch's own identity from STS (for the self-loop guard).
pub async fn open(
    config: RemediationConfig,
    state_dir: &Path,
    notifier: Arc<dyn trailwatch_remediate::Notifier>,
) -> anyhow::Result<Arc<Remediator>> {
    let path = store_path(state_dir);
    let store = Store::open(&path)?;
    let mut remediator = Remediator::new(config, store, None, Some(notifier));
    if remediator.may_act() {
        remediator.identify().await;
    }
    Ok(Arc::new(remediator))
}

/// Runs queued jobs, one at a time, until `stop`; `wake` is notified when the pipeline
/// queued new ones. A job in progress finishes before it returns.
pub async fn executor(
    remediator: Arc<Remediator>,
    wake: Arc<tokio::sync::Notify>,
    stop: CancellationToken,
) {
    loop {
        while !stop.is_cancelled() {
            match remediator.run_next().await {
                Ok(Some((job, status))) => {
                    tracing::info!(job, status = status.as_str(), "remediation job ended");
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::error!(error = %e, "remediation executor");
                    break;
                }
            }
        }
        tokio::select! {
            _ = wake.notified() => {}
            _ = tokio::time::sleep(POLL_EVERY) => {}
            _ = stop.cancelled() => return,
        }
    }
}

fn open_store(args: &RemediationStore) -> anyhow::Result<Store> {
    let config = load_config(args.config.as_deref())?;
    let dir = state::state_dir(args.state.as_deref(), &config)?;
    let path = store_path(&dir);
    if !path.exists() {
        anyhow::bail!(
            "no remediation database at {} (nothing has been remediated with this state folder yet)",
            path.display()
        );
    }
    Ok(Store::open(&path)?)
}

fn time_of(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

fn job_resources(job: &Job) -> String {
    let plan = job.alert.remediation.as_ref();
    let mut seen = BTreeSet::new();
    for step in plan.map(|p| p.steps.as_slice()).unwrap_or_default() {
        if !step.resource.is_empty() {
            seen.insert(step.resource.as_str());
        }
    }
    seen.into_iter().collect::<Vec<_>>().join(" ")
}

fn print_jobs(jobs: &[Job], format: Format) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match format {
        Format::Json => {
            for job in jobs {
                let plan = job.alert.remediation.as_ref();
                let line = json!({
                    "id": job.id,
                    "status": job.status.as_str(),
                    "rule_id": job.alert.rule_id,
                    "event_id": job.alert.event_id,
                    "account": job.alert.account,
                    "region": job.alert.region,
                    "title": job.alert.title,
                    "created": time_of(job.created_ms),
                    "expires": job.expires_ms.map(time_of),
                    "decided_by": job.decided_by,
                    "mode": plan.map(|p| p.mode.as_str()),
                    "skipped": plan.and_then(|p| p.skipped.as_deref()),
                    "steps": plan.map(|p| &p.steps),
                });
                writeln!(out, "{line}")?;
            }
        }
        Format::Text => {
            if jobs.is_empty() {
                writeln!(out, "no remediation jobs")?;
            }
            for job in jobs {
                writeln!(
                    out,
                    "{}  {:<17}  {}  {}  {}",
                    job.id,
                    job.status.as_str(),
                    time_of(job.created_ms),
                    job.alert.rule_id,
                    job_resources(job)
                )?;
                writeln!(out, "    {}", job.alert.title)?;
                if let Some(plan) = &job.alert.remediation {
                    for step in &plan.steps {
                        for call in &step.calls {
                            writeln!(out, "    {}: {call}", step.id)?;
                        }
                    }
                    if let Some(why) = &plan.skipped {
                        writeln!(out, "    skipped: {why}")?;
                    }
                }
                if job.status == JobStatus::AwaitingApproval {
                    writeln!(
                        out,
                        "    approve: trailwatch remediation approve {}{}",
                        job.id,
                        job.expires_ms
                            .map(|t| format!(" (before {})", time_of(t)))
                            .unwrap_or_default()
                    )?;
                }
            }
        }
    }
    Ok(())
}

fn compact(v: &Value) -> String {
    let text = v.to_string();
    if text.len() > 400 {
        let cut = (0..=400)
            .rev()
            .find(|i| text.is_char_boundary(*i))
            .unwrap_or(0);
        format!("{}…", &text[..cut])
    } else {
        text
    }
}

fn print_log(entries: &[AuditEntry], format: Format) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    for e in entries {
        match format {
            Format::Json => writeln!(out, "{}", serde_json::to_string(e)?)?,
            Format::Text => {
                let step = match (&e.step, &e.action) {
                    (Some(step), Some(action)) if step != action => format!(" {step} ({action})"),
                    (Some(step), _) => format!(" {step}"),
                    _ => String::new(),
                };
                writeln!(
                    out,
                    "#{} {} {} {}{step} by {}: rule {} event {}",
                    e.seq, e.at, e.job_id, e.status, e.actor, e.rule_id, e.event_id
                )?;
                if let Some(reason) = &e.reason {
                    writeln!(out, "    {reason}")?;
                }
                if let Some(request) = &e.request {
                    writeln!(out, "    request:  {}", compact(request))?;
                }
                if let Some(response) = &e.response {
                    writeln!(out, "    response: {}", compact(response))?;
                }
            }
        }
    }
    Ok(())
}

fn approver(by: Option<String>) -> String {
    by.or_else(|| std::env::var("USER").ok().filter(|u| !u.is_empty()))
        .map(|u| format!("{u} (cli)"))
        .unwrap_or_else(|| "cli".to_owned())
}

/// Runs one `remediation` subcommand.
pub fn run(cmd: RemediationCommand) -> anyhow::Result<u8> {
    match cmd {
        RemediationCommand::List {
            store,
            status,
            limit,
            format,
        } => {
            let status = match status.as_deref() {
                Some(name) => Some(JobStatus::from_name(name).ok_or_else(|| {
                    anyhow::anyhow!(
                        "--status {name:?} is not one of: {}",
                        JobStatus::ALL.map(JobStatus::as_str).join(", ")
                    )
                })?),
                None => None,
            };
            let store = open_store(&store)?;
            print_jobs(&store.jobs(status, limit)?, format)?;
            Ok(EXIT_OK)
        }
        RemediationCommand::Log { job, store, format } => {
            let store = open_store(&store)?;
            if let Some(id) = &job
                && store.job(id)?.is_none()
            {
                anyhow::bail!("no remediation job {id}");
            }
            let entries = store.audit_entries(job.as_deref())?;
            print_log(&entries, format)?;
            // The chain is checked over the whole trail: one job's entries are not a chain.
            let whole = if job.is_some() {
                store.audit_entries(None)?
            } else {
                entries
            };
            match verify_chain(&whole) {
                Ok(()) => {
                    let head = whole.last().map_or("none", |e| e.hash.as_str());
                    eprintln!(
                        "audit trail: {} entries; hash chain verified; head {head}",
                        whole.len()
                    );
                    Ok(EXIT_OK)
                }
                Err(e) => {
                    eprintln!("audit trail: NOT intact: {e}");
                    Ok(EXIT_FAILED_CHECK)
                }
            }
        }
        RemediationCommand::Approve { job, by, store } => decide_cmd(&job, true, by, &store),
        RemediationCommand::Reject { job, by, store } => decide_cmd(&job, false, by, &store),
    }
}

fn decide_cmd(
    job: &str,
    approve: bool,
    by: Option<String>,
    store: &RemediationStore,
) -> anyhow::Result<u8> {
    let mut store = open_store(store)?;
    let by = approver(by);
    match trailwatch_remediate::workflow::decide(&mut store, job, approve, &by) {
        Ok(status) => {
            if approve {
                println!(
                    "{job}: approved by {by}; {}. A running `trailwatch run` picks it up within seconds; `trailwatch watch --once` runs it on its next pass.",
                    status.as_str()
                );
            } else {
                println!("{job}: rejected by {by}; nothing will run");
            }
            Ok(EXIT_OK)
        }
        Err(e @ (RemediateError::NotAwaiting { .. } | RemediateError::NoSuchJob(_))) => {
            eprintln!("trailwatch: {e}");
            Ok(EXIT_FAILED_CHECK)
        }
        Err(e) => Err(e.into()),
    }
}

/// An IAM policy document, its keys in the order AWS writes them.
#[derive(Debug, serde::Serialize)]
pub struct Policy {
    #[serde(rename = "Version")]
    version: &'static str,
    #[serde(rename = "Statement")]
    statement: Vec<Statement>,
}

#[derive(Debug, serde::Serialize)]
struct Statement {
    #[serde(rename = "Sid")]
    sid: String,
    #[serde(rename = "Effect")]
    effect: &'static str,
    #[serde(rename = "Action")]
    action: Vec<&'static str>,
    #[serde(rename = "Resource")]
    resource: &'static str,
}

/// The IAM policy for a set of actions: one statement per service and resource pattern.
pub fn iam_policy(actions: &BTreeSet<ActionKind>) -> Policy {
    let mut statements: BTreeMap<(&'static str, &'static str), BTreeSet<&'static str>> =
        BTreeMap::new();
    for action in actions {
        for api in action.iam_actions() {
            let service = api.split(':').next().unwrap_or_default();
            statements
                .entry((service, action.iam_resource()))
                .or_default()
                .insert(api);
        }
    }
    let statement = statements
        .into_iter()
        .map(|((service, resource), apis)| {
            let sid = match service {
                "ec2" => "Ec2",
                "s3" => "S3",
                "iam" => "Iam",
                "cloudtrail" => "CloudTrail",
                other => other,
            };
            Statement {
                sid: format!("TrailwatchRemediation{sid}"),
                effect: "Allow",
                action: apis.into_iter().collect(),
                resource,
            }
        })
        .collect();
    Policy {
        version: "2012-10-17",
        statement,
    }
}

/// The actions a policy must cover: every loaded rule's, or with `enforced_only` those of
/// rules that may act (approve or enforce mode).
pub fn policy_actions(
    ruleset: &RuleSet,
    remediation: &RemediationConfig,
    enforced_only: bool,
) -> BTreeMap<String, BTreeSet<ActionKind>> {
    ruleset
        .rules()
        .iter()
        .filter(|r| !enforced_only || remediation.mode_for(&r.id) != Mode::DryRun)
        .map(|r| (r.id.clone(), r.remediation_actions()))
        .filter(|(_, actions)| !actions.is_empty())
        .collect()
}

/// `trailwatch iam-policy`.
pub fn iam_policy_cmd(args: IamPolicyArgs) -> anyhow::Result<u8> {
    let (config, ruleset) = crate::ruleset::load(&args.rules)?;
    let remediation = config_of(&config)?;
    let per_rule = policy_actions(&ruleset, &remediation, args.enforced_only);
    if per_rule.is_empty() {
        eprintln!(
            "trailwatch: no {}rule has a remediate: block; no permissions needed",
            if args.enforced_only {
                "approve- or enforce-mode "
            } else {
                ""
            }
        );
    }
    let all: BTreeSet<ActionKind> = per_rule.values().flatten().copied().collect();
    for (rule, actions) in &per_rule {
        let names: Vec<&str> = actions.iter().map(|a| a.name()).collect();
        eprintln!(
            "# {rule} ({}): {}",
            remediation.mode_for(rule).as_str(),
            names.join(", ")
        );
    }
    if let Some(role) = &remediation.aws.role_arn {
        eprintln!(
            "# attach this policy to {role} in each account; trailwatch's own principal also needs sts:AssumeRole on it"
        );
    }
    println!("{}", serde_json::to_string_pretty(&iam_policy(&all))?);
    Ok(EXIT_OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_groups_actions_by_service_and_resource() {
        let actions: BTreeSet<ActionKind> = [
            ActionKind::Ec2RevokeIngress,
            ActionKind::S3MakeObjectPrivate,
            ActionKind::IamDeactivateAccessKey,
            ActionKind::Notify,
        ]
        .into_iter()
        .collect();
        let policy = serde_json::to_value(iam_policy(&actions)).unwrap();
        let statements = policy["Statement"].as_array().unwrap();
        assert_eq!(statements.len(), 3, "{policy:#}");
        let iam = statements
            .iter()
            .find(|s| s["Sid"] == "TrailwatchRemediationIam")
            .unwrap();
        assert_eq!(iam["Resource"], "arn:aws:iam::*:user/*");
        assert_eq!(
            iam["Action"],
            json!([
                "iam:GetAccessKeyLastUsed",
                "iam:ListUserTags",
                "iam:UpdateAccessKey"
            ])
        );
        assert!(
            statements
                .iter()
                .all(|s| !s["Action"].to_string().contains('*'))
        );
    }
}

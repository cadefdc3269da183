//! `remediate:` blocks: compile the steps at load (action names, parameter names, templates,
//! `when` conditions, retry policies, `on_error` targets), and plan them for each alert.
//!
//! Planning is pure: parameters are rendered from the alert's variables, each action's
//! defaults fill what the rule leaves out (so an action acts on exactly the resource its
//! event names), and [`trailwatch_actions::plan`] turns them into the calls the step will
//! make. A rule never picks its own mode: every plan starts as `dry-run`, and only the
//! service's config can raise it to `approve` or `enforce`.

use std::collections::BTreeSet;

use serde_json::{Map, Value};
use serde_saphyr::Spanned;
use trailwatch_actions::{ActionKind, ErrorClass, ParamType};
use trailwatch_alert::{PlannedStep, Remediation, RetrySpec};

use crate::cel::CelExpr;
use crate::compile::cel;
use crate::error::{Errs, RuleErrorKind, pos_of};
use crate::schema::{RawRemediate, RawStep, parse_duration};
use crate::templates::Templates;

/// Variables the actions' default parameters read, on top of a rule's own: rules that
/// define them (`protocol`, `cidr`, `instances`, ...) feed the defaults; others leave
/// them undefined, which renders empty and makes the plan say which parameter is missing.
const DEFAULT_VARIABLES: &[&str] = &["protocol", "from_port", "to_port", "cidr", "instances"];

/// A compiled workflow.
#[derive(Debug)]
pub struct Workflow {
    pub(crate) steps: Vec<Step>,
    pub(crate) catch: Vec<Step>,
}

#[derive(Debug)]
pub(crate) struct Step {
    id: String,
    action: ActionKind,
    params: Vec<(String, Param)>,
    pub(crate) when: Option<CelExpr>,
    retry: RetrySpec,
    on_error: Option<String>,
    pos: trailwatch_config::Pos,
}

/// A parameter: a literal, or a template (strings at any depth), kept as a tree.
#[derive(Debug, Clone)]
enum Param {
    Literal(Value),
    Template(String),
    List(Vec<Param>),
    Map(Vec<(String, Param)>),
}

impl Workflow {
    /// The actions the workflow can run (for the IAM policy).
    pub fn actions(&self) -> BTreeSet<ActionKind> {
        self.steps
            .iter()
            .chain(&self.catch)
            .map(|s| s.action)
            .collect()
    }

    /// The steps whose `when` must be evaluated, in order (steps then catch).
    pub(crate) fn conditions(&self) -> impl Iterator<Item = Option<&CelExpr>> {
        self.steps
            .iter()
            .chain(&self.catch)
            .map(|s| s.when.as_ref())
    }

    /// Plans the workflow for one alert. `enabled[i]` says whether step `i` (steps, then
    /// catch) passed its `when`.
    pub(crate) fn plan(
        &self,
        templates: &Templates,
        ctx: &minijinja::Value,
        enabled: &[bool],
    ) -> Option<Remediation> {
        let mut planned = self
            .steps
            .iter()
            .chain(&self.catch)
            .zip(enabled.iter().copied().chain(std::iter::repeat(true)))
            .map(|(step, on)| on.then(|| step.plan(templates, ctx)));
        let steps: Vec<PlannedStep> = planned.by_ref().take(self.steps.len()).flatten().collect();
        let catch: Vec<PlannedStep> = planned.flatten().collect();
        if steps.is_empty() {
            return None;
        }
        Some(Remediation {
            mode: "dry-run".to_owned(),
            steps,
            catch,
            ..Remediation::default()
        })
    }
}

impl Step {
    fn plan(&self, templates: &Templates, ctx: &minijinja::Value) -> PlannedStep {
        let mut params = Map::new();
        let mut invalid = None;
        for (name, p) in &self.params {
            match p.render(templates, ctx) {
                Ok(v) => {
                    params.insert(name.clone(), v);
                }
                Err(e) => invalid = Some(format!("parameter {name}: {e}")),
            }
        }
        let mut step = PlannedStep {
            id: self.id.clone(),
            action: self.action.name().to_owned(),
            retry: self.retry.clone(),
            on_error: self.on_error.clone(),
            ..PlannedStep::default()
        };
        // Empty renders are absent parameters, so `plan` names what is missing.
        params.retain(|_, v| !matches!(v, Value::String(s) if s.trim().is_empty()));
        match (invalid, trailwatch_actions::plan(self.action, &params)) {
            (Some(e), _) => step.invalid = Some(e),
            (None, Ok(request)) => {
                step.calls = request.calls();
                step.resource = request.resource();
            }
            (None, Err(e)) => step.invalid = Some(e.to_string()),
        }
        step.params = params;
        step
    }
}

impl Param {
    fn render(&self, templates: &Templates, ctx: &minijinja::Value) -> Result<Value, String> {
        Ok(match self {
            Param::Literal(v) => v.clone(),
            Param::Template(name) => Value::String(templates.try_render(name, ctx)?),
            Param::List(items) => Value::Array(
                items
                    .iter()
                    .map(|p| p.render(templates, ctx))
                    .collect::<Result<_, _>>()?,
            ),
            Param::Map(entries) => Value::Object(
                entries
                    .iter()
                    .map(|(k, p)| Ok((k.clone(), p.render(templates, ctx)?)))
                    .collect::<Result<_, String>>()?,
            ),
        })
    }
}

/// Compiles a `remediate:` block, pushing every error with its position.
pub(crate) fn compile(
    rule_id: &str,
    raw: &Spanned<RawRemediate>,
    allowed: &BTreeSet<String>,
    templates: &mut Templates,
    errs: &mut Errs<'_>,
) -> Option<Workflow> {
    let block = pos_of(raw);
    if raw.value.steps.is_empty() {
        errs.push(
            block,
            RuleErrorKind::Invalid,
            "remediate needs at least one step",
        );
    }
    let mut with_defaults = allowed.clone();
    with_defaults.extend(DEFAULT_VARIABLES.iter().map(|s| (*s).to_owned()));
    let mut ids: Vec<String> = Vec::new();
    let mut compile_steps = |list: &[Spanned<RawStep>], section: &str, errs: &mut Errs<'_>| {
        let mut out = Vec::new();
        for raw_step in list {
            let pos = pos_of(raw_step);
            let s = &raw_step.value;
            let Some(action) = ActionKind::from_name(&s.action.value) else {
                errs.push(
                    pos_of(&s.action),
                    RuleErrorKind::Invalid,
                    trailwatch_actions::ActionError::UnknownAction(s.action.value.clone())
                        .to_string(),
                );
                continue;
            };
            let id = s.id.clone().unwrap_or_else(|| action.name().to_owned());
            if ids.contains(&id) {
                errs.push(
                    pos,
                    RuleErrorKind::Invalid,
                    format!("{section}: step id {id:?} is used twice; give each step its own `id`"),
                );
            }
            ids.push(id.clone());
            if let Err(e) = trailwatch_actions::check_param_names(
                action,
                s.with_.0.iter().map(|(k, _)| k.value.as_str()),
            ) {
                errs.push(pos, RuleErrorKind::Invalid, e.to_string());
            }
            let mut params = Vec::new();
            for spec in action.params() {
                let given = s.with_.0.iter().find(|(k, _)| k.value == spec.name);
                let (value, key_pos, allowed) = match (given, spec.default) {
                    (Some((k, v)), _) => (v.clone(), pos_of(k), allowed),
                    (None, Some(default)) => {
                        (Value::String(default.to_owned()), pos, &with_defaults)
                    }
                    (None, None) if spec.required => {
                        errs.push(
                            pos,
                            RuleErrorKind::Invalid,
                            format!(
                                "action {action} needs `with: {{{}: ...}}` ({})",
                                spec.name, spec.help
                            ),
                        );
                        continue;
                    }
                    (None, None) => continue,
                };
                if spec.kind == ParamType::TextMap && !value.is_object() {
                    errs.push(
                        key_pos,
                        RuleErrorKind::Invalid,
                        format!("{}: expected a mapping", spec.name),
                    );
                    continue;
                }
                let name = format!("{rule_id}#remediate#{id}#{}", spec.name);
                match template_tree(&name, &value, allowed, templates) {
                    Ok(p) => params.push((spec.name.to_owned(), p)),
                    Err(reason) => errs.push(key_pos, RuleErrorKind::Template, reason),
                }
            }
            let retry = compile_retry(s, pos, errs);
            let when = s.when.as_ref().and_then(|w| cel(w, errs));
            out.push(Step {
                id,
                action,
                params,
                when,
                retry,
                on_error: s.on_error.clone(),
                pos,
            });
        }
        out
    };
    let steps = compile_steps(&raw.value.steps, "steps", errs);
    let catch = compile_steps(&raw.value.catch, "catch", errs);
    for step in steps.iter().chain(&catch) {
        if let Some(target) = &step.on_error
            && !catch.iter().chain(&steps).any(|s| &s.id == target)
        {
            errs.push(
                step.pos,
                RuleErrorKind::Invalid,
                format!(
                    "step {:?}: on_error names {target:?}, which is not a step of this rule",
                    step.id
                ),
            );
        }
    }
    // Returned even with errors, so the rule's CEL check still sees the `when`s; the rule
    // itself is dropped when any error was pushed.
    Some(Workflow { steps, catch })
}

fn compile_retry(s: &RawStep, pos: trailwatch_config::Pos, errs: &mut Errs<'_>) -> RetrySpec {
    let mut retry = RetrySpec::default();
    let Some(r) = &s.retry else { return retry };
    if let Some(n) = r.max_attempts {
        if !(1..=20).contains(&n) {
            errs.push(
                pos,
                RuleErrorKind::Invalid,
                format!("retry.max_attempts {n} is not within 1..=20"),
            );
        }
        retry.max_attempts = n;
    }
    if let Some(b) = &r.backoff {
        match parse_duration(b) {
            Some(d) => retry.backoff_ms = d.num_milliseconds().max(0) as u64,
            None => errs.push(
                pos,
                RuleErrorKind::Invalid,
                format!("retry.backoff {b:?} is not a duration like 500ms, 2s, 1m"),
            ),
        }
    }
    if let Some(classes) = &r.retry_on {
        for c in classes {
            match ErrorClass::from_name(c) {
                None => errs.push(
                    pos,
                    RuleErrorKind::Invalid,
                    format!("retry.retry_on: unknown error class {c:?}; known: throttling, server, network, not-found, client"),
                ),
                Some(ErrorClass::AccessDenied) => errs.push(
                    pos,
                    RuleErrorKind::Invalid,
                    "retry.retry_on: access-denied never retries (a retry cannot grant a permission)",
                ),
                Some(_) => {}
            }
        }
        retry.retry_on = classes.clone();
    }
    retry
}

fn template_tree(
    name: &str,
    value: &Value,
    allowed: &BTreeSet<String>,
    templates: &mut Templates,
) -> Result<Param, String> {
    Ok(match value {
        Value::String(s) if s.contains("{{") || s.contains("{%") => {
            templates.add(name, s, allowed)?;
            Param::Template(name.to_owned())
        }
        Value::Array(items) => Param::List(
            items
                .iter()
                .enumerate()
                .map(|(i, v)| template_tree(&format!("{name}#{i}"), v, allowed, templates))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(map) => Param::Map(
            map.iter()
                .map(|(k, v)| {
                    Ok((
                        k.clone(),
                        template_tree(&format!("{name}#{k}"), v, allowed, templates)?,
                    ))
                })
                .collect::<Result<_, String>>()?,
        ),
        other => Param::Literal(other.clone()),
    })
}

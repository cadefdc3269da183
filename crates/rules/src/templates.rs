//! Alert templates (minijinja): compiled once at load, with every variable checked against
//! what the rule can actually provide, so a typo is a load error rather than an empty field.

use std::collections::BTreeSet;

use minijinja::{Environment, UndefinedBehavior};

/// Variables every template may use (besides the rule's `for_each` and `let` names).
pub const BASE_VARIABLES: &[&str] = &[
    "record",
    "event",
    "item",
    "config",
    "principal",
    "account",
    "account_alias",
    "region",
    "source_ip",
    "user_agent",
    "event_time",
    "event_name",
    "event_source",
    "event_id",
    "console_url",
    "severity",
    "rule",
];

/// Variables only `title` and `body` may use (they are rendered after `fields`/`resources`).
pub const LATE_VARIABLES: &[&str] = &["fields", "resources"];

/// Names minijinja itself provides.
const BUILTIN_GLOBALS: &[&str] = &[
    "range",
    "dict",
    "namespace",
    "debug",
    "loop",
    "true",
    "false",
    "none",
];

/// The facts block appended to every body, so every alert names who, what, where, when.
pub const FACTS_TEMPLATE: &str = "\
Who:     {% if principal.type %}{{ principal.type }} {{ principal.name }}{% if principal.arn %} ({{ principal.arn }}){% endif %}{% else %}-{% endif %}
What:    {{ event_name }} on {{ event_source }}
Target:  {{ resources | join(\", \") if resources else \"-\" }}
Account: {{ account }}{% if account_alias %} ({{ account_alias }}){% endif %}
Region:  {{ region }}
Source:  {{ source_ip or \"-\" }}
Agent:   {{ user_agent or \"-\" }}
Time:    {{ event_time }}
{%- for k, v in fields | dictsort %}
{{ k }}: {{ v }}
{%- endfor %}
Console: {{ console_url }}";

/// A set of compiled templates, addressed by name.
#[derive(Debug)]
pub struct Templates {
    env: Environment<'static>,
}

impl Default for Templates {
    fn default() -> Self {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Chainable);
        env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
        let mut t = Templates { env };
        // The facts template is ours and valid; an error here would be a bug caught by tests.
        let _ = t.env.add_template_owned("__facts", FACTS_TEMPLATE);
        t
    }
}

impl Templates {
    /// Compiles a template under `name`, checking its variables against `allowed`.
    pub fn add(
        &mut self,
        name: &str,
        source: &str,
        allowed: &BTreeSet<String>,
    ) -> Result<(), String> {
        self.env
            .add_template_owned(name.to_owned(), source.to_owned())
            .map_err(|e| format!("template error: {}", e.detail().unwrap_or(&e.to_string())))?;
        let tmpl = self
            .env
            .get_template(name)
            .map_err(|e| format!("template error: {e}"))?;
        // Unknown filters, tests and functions only show when rendering: render once with
        // nothing defined (every variable is undefined, which Chainable tolerates).
        if let Err(e) = tmpl.render(minijinja::context! {}) {
            let msg = e.to_string();
            if msg.contains("unknown filter")
                || msg.contains("unknown test")
                || msg.contains("unknown function")
            {
                self.env.remove_template(name);
                return Err(format!(
                    "template error in {source:?}: {}",
                    e.detail().unwrap_or(&msg)
                ));
            }
        }
        let tmpl = self
            .env
            .get_template(name)
            .map_err(|e| format!("template error: {e}"))?;
        let mut unknown: Vec<String> = tmpl
            .undeclared_variables(false)
            .into_iter()
            .filter(|v| !allowed.contains(v) && !BUILTIN_GLOBALS.contains(&v.as_str()))
            .collect();
        if unknown.is_empty() {
            return Ok(());
        }
        unknown.sort();
        self.env.remove_template(name);
        Err(format!(
            "unknown template variable{} {} in {:?} (known: {})",
            if unknown.len() > 1 { "s" } else { "" },
            unknown
                .iter()
                .map(|u| format!("`{u}`"))
                .collect::<Vec<_>>()
                .join(", "),
            source,
            allowed.iter().cloned().collect::<Vec<_>>().join(", ")
        ))
    }

    /// Renders a template; a render error gives the error text in place of the output.
    pub fn render(&self, name: &str, ctx: &minijinja::Value) -> String {
        match self.env.get_template(name) {
            Ok(t) => t
                .render(ctx)
                .unwrap_or_else(|e| format!("<template {name} failed: {e}>")),
            Err(e) => format!("<template {name} missing: {e}>"),
        }
    }

    /// Renders a template, or says why it failed (remediation parameters must not act on
    /// an error message).
    pub fn try_render(&self, name: &str, ctx: &minijinja::Value) -> Result<String, String> {
        self.env
            .get_template(name)
            .and_then(|t| t.render(ctx))
            .map_err(|e| e.to_string())
    }

    /// Renders the standard facts block.
    pub fn facts(&self, ctx: &minijinja::Value) -> String {
        self.render("__facts", ctx)
    }
}

/// The allowed variable set for a rule.
pub fn allowed(extra: &[String], late: bool) -> BTreeSet<String> {
    let mut s: BTreeSet<String> = BASE_VARIABLES.iter().map(|s| (*s).to_owned()).collect();
    s.extend(extra.iter().cloned());
    if late {
        s.extend(LATE_VARIABLES.iter().map(|s| (*s).to_owned()));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(source: &str, want: Result<&str, &str>) {
        let mut t = Templates::default();
        let allowed = allowed(&["perm".to_owned()], true);
        let ctx = minijinja::Value::from(minijinja::value::Serde(serde_json::json!({
            "record": {"eventName": "X", "a": {"b": 1}}, "perm": {"fromPort": 22}, "fields": {}
        })));
        match (t.add("t", source, &allowed), want) {
            (Ok(()), Ok(out)) => assert_eq!(t.render("t", &ctx), out),
            (Err(e), Err(msg)) => assert!(e.contains(msg), "{e}"),
            (got, want) => panic!("{source}: got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn variables_are_checked_at_load() {
        check(
            "{{ record.eventName }} port {{ perm.fromPort }}",
            Ok("X port 22"),
        );
        check("{{ record.missing.deeper }}|", Ok("|"));
        check("{% for x in [1,2] %}{{ x }}{% endfor %}", Ok("12"));
        check("{% set y = 3 %}{{ y }}", Ok("3"));
        check(
            "{{ recrod.eventName }}",
            Err("unknown template variable `recrod`"),
        );
        check("{{ record.eventName", Err("template error"));
        check(
            "{{ record.eventName | shout }}",
            Err("filter shout is unknown"),
        );
    }
}

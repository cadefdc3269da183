//! `trailwatch rules list | test | lint`.

use std::io::{self, Write};

use trailwatch_rules::lint::LintLevel;
use trailwatch_rules::{RuleSet, builtin_sources, lint, testing};

use crate::cli::{EXIT_FAILED_CHECK, EXIT_OK, Format, RuleArgs, RulesCommand};
use crate::ruleset::{load, load_config, read_rule_sources};

/// Runs one `rules` subcommand.
pub fn run(cmd: RulesCommand) -> anyhow::Result<u8> {
    match cmd {
        RulesCommand::List { rules, format } => list(&rules, format),
        RulesCommand::Test { paths, config } => {
            let config = load_config(config.as_deref())?;
            let sources = if paths.is_empty() {
                builtin_sources()
            } else {
                read_rule_sources(&paths)?
            };
            let report = testing::run(&sources, &config);
            println!("{report}");
            Ok(if report.failed == 0 {
                EXIT_OK
            } else {
                EXIT_FAILED_CHECK
            })
        }
        RulesCommand::Lint { paths, config } => {
            let config = load_config(config.as_deref())?;
            let sources = if paths.is_empty() {
                builtin_sources()
            } else {
                read_rule_sources(&paths)?
            };
            let findings = lint::lint(&sources, &config);
            for finding in &findings {
                println!("{finding}");
            }
            let errors = findings
                .iter()
                .filter(|f| f.level == LintLevel::Error)
                .count();
            println!(
                "{} findings ({} errors) in {} rule files",
                findings.len(),
                errors,
                sources.len()
            );
            Ok(if errors == 0 {
                EXIT_OK
            } else {
                EXIT_FAILED_CHECK
            })
        }
    }
}

fn list(args: &RuleArgs, format: Format) -> anyhow::Result<u8> {
    let (_config, ruleset): (_, RuleSet) = load(args)?;
    let stdout = io::stdout();
    let mut out = stdout.lock();
    for rule in ruleset.rules() {
        match format {
            Format::Json => {
                let line = serde_json::json!({
                    "id": rule.id,
                    "severity": rule.severity.as_str(),
                    "title": rule.title,
                    "tags": rule.tags,
                    "enabled": rule.enabled,
                    "origin": rule.origin,
                });
                writeln!(out, "{line}")?;
            }
            Format::Text => writeln!(
                out,
                "{:<45} {:<9} {}{}",
                rule.id,
                rule.severity.as_str(),
                rule.title,
                if rule.enabled { "" } else { "  (disabled)" }
            )?,
        }
    }
    Ok(EXIT_OK)
}

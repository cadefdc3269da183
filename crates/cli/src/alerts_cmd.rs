//! `trailwatch alerts dead | retry | test`: the delivery outbox from the command line.

use std::path::Path;

use anyhow::Context;
use trailwatch_config::Config;
use trailwatch_notify::commands;
use trailwatch_notify::config::{NotifyConfig, SectionText, parse_texts};
use trailwatch_notify::{Notifier, RetrySelector};

use crate::cli::{AlertsCommand, EXIT_FAILED_CHECK, EXIT_OK, Format};
use crate::ruleset::load_config;
use crate::state;

/// Reads the `destinations`, `routes` and `outbox` sections of a loaded config.
pub fn notify_config_of(config: &Config) -> anyhow::Result<NotifyConfig> {
    let sections: Vec<_> = ["destinations", "routes", "outbox"]
        .into_iter()
        .filter_map(|key| config.section(key).map(|s| (key, s)))
        .collect();
    let texts: Vec<SectionText<'_>> = sections
        .iter()
        .map(|(key, section)| SectionText {
            key: Some(key),
            origin: &section.origin,
            yaml: &section.text,
            first_line: 1,
        })
        .collect();
    parse_texts(&texts).map_err(|errors| {
        let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
        anyhow::anyhow!("invalid config:\n{}", lines.join("\n"))
    })
}

/// Opens the outbox of the config at `config_path` in the state folder `state` (see
/// [`crate::state`]).
fn open(config_path: Option<&Path>, state: Option<&Path>) -> anyhow::Result<Notifier> {
    let config = load_config(config_path)?;
    let notify = notify_config_of(&config)?;
    let path = notify.outbox.path_in(&state::state_dir(state, &config)?);
    Notifier::open(notify, &path)
        .with_context(|| format!("cannot open the outbox {}", path.display()))
}

fn print(
    report: &(impl std::fmt::Display + serde::Serialize),
    format: Format,
) -> anyhow::Result<()> {
    match format {
        Format::Text => println!("{report}"),
        Format::Json => println!("{}", serde_json::to_string(report)?),
    }
    Ok(())
}

/// Runs one `alerts` subcommand.
pub fn run(cmd: AlertsCommand) -> anyhow::Result<u8> {
    match cmd {
        AlertsCommand::Dead {
            config,
            state,
            format,
        } => {
            let notifier = open(config.as_deref(), state.as_deref())?;
            print(&commands::dead(&notifier)?, format)?;
            Ok(EXIT_OK)
        }
        AlertsCommand::Retry {
            config,
            state,
            ids,
            destination,
            format,
        } => {
            let selector = match (ids.is_empty(), destination) {
                (false, None) => RetrySelector::Ids(ids),
                (true, Some(name)) => RetrySelector::Destination(name),
                (true, None) => RetrySelector::All,
                (false, Some(_)) => anyhow::bail!("give either --id or --destination, not both"),
            };
            let notifier = open(config.as_deref(), state.as_deref())?;
            let report = commands::retry(&notifier, &selector)?;
            print(&report, format)?;
            let runtime = tokio::runtime::Runtime::new().context("cannot start the runtime")?;
            runtime
                .block_on(notifier.run_until_idle())
                .context("delivery failed")?;
            Ok(EXIT_OK)
        }
        AlertsCommand::Test {
            config,
            state,
            destination,
            format,
        } => {
            let notifier = open(config.as_deref(), state.as_deref())?;
            let runtime = tokio::runtime::Runtime::new().context("cannot start the runtime")?;
            match runtime.block_on(commands::test(&notifier, &destination)) {
                Ok(report) => {
                    print(&report, format)?;
                    Ok(EXIT_OK)
                }
                Err(err) => {
                    eprintln!("trailwatch: test alert to {destination} failed: {err}");
                    Ok(EXIT_FAILED_CHECK)
                }
            }
        }
    }
}

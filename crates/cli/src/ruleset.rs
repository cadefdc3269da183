//! Reading rule files and the config from disk, then handing their text to the pure
//! `rules` and `config` crates.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use trailwatch_config::Config;
use trailwatch_rules::{RuleSet, RuleSource, builtin_sources};

use crate::cli::RuleArgs;

/// Reads and validates the config file, or the embedded default when none is given.
pub fn load_config(path: Option<&Path>) -> anyhow::Result<Config> {
    let Some(path) = path else {
        return Ok(Config::default());
    };
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config {}", path.display()))?;
    trailwatch_config::parse(&path.display().to_string(), &text)
        .map_err(|errors| anyhow::anyhow!("invalid config:\n{errors}"))
}

fn is_rule_file(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml")
    )
}

/// Reads rule files from files and folders (recursively, `*.yaml`/`*.yml`).
pub fn read_rule_sources(paths: &[PathBuf]) -> anyhow::Result<Vec<RuleSource>> {
    let mut sources = Vec::new();
    for path in paths {
        let meta = std::fs::metadata(path)
            .with_context(|| format!("cannot read rules {}", path.display()))?;
        let mut files = Vec::new();
        if meta.is_dir() {
            for entry in walkdir::WalkDir::new(path).sort_by_file_name() {
                let entry = entry.with_context(|| format!("cannot walk {}", path.display()))?;
                if entry.file_type().is_file() && is_rule_file(entry.path()) {
                    files.push(entry.path().to_path_buf());
                }
            }
            if files.is_empty() {
                bail!("no rule files (*.yaml, *.yml) in {}", path.display());
            }
        } else {
            files.push(path.clone());
        }
        for file in files {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read rules {}", file.display()))?;
            sources.push(RuleSource {
                origin: file.display().to_string(),
                text,
            });
        }
    }
    Ok(sources)
}

/// The rule sources a command runs: the built-in pack (unless turned off), the config's
/// extra paths (relative to the config file's folder), and `--rules`.
pub fn rule_sources(args: &RuleArgs, config: &Config) -> anyhow::Result<Vec<RuleSource>> {
    let mut sources = if args.no_builtin || !config.rules.builtin {
        Vec::new()
    } else {
        builtin_sources()
    };
    let config_dir = args
        .config
        .as_deref()
        .and_then(Path::parent)
        .unwrap_or(Path::new("."));
    let config_paths: Vec<PathBuf> = config
        .rules
        .paths
        .iter()
        .map(|p| config_dir.join(p))
        .collect();
    sources.extend(read_rule_sources(&config_paths)?);
    sources.extend(read_rule_sources(&args.rules)?);
    if sources.is_empty() {
        bail!(
            "no rules to run: the built-in pack is off (--no-builtin or rules.builtin: false) and no other rules were given"
        );
    }
    Ok(sources)
}

/// Loads config and rules and compiles them, reporting every rule error at once.
pub fn load(args: &RuleArgs) -> anyhow::Result<(Config, RuleSet)> {
    let config = load_config(args.config.as_deref())?;
    let sources = rule_sources(args, &config)?;
    let ruleset = RuleSet::compile(&sources, &config)
        .map_err(|errors| anyhow::anyhow!("invalid rules:\n{errors}"))?;
    Ok((config, ruleset))
}

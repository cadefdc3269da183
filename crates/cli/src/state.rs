//! Where trailwatch keeps its state, and the binary's own small config sections.
//!
//! One folder holds every durable file of a host: the watch checkpoint (`watch.sqlite`), the
//! live sources' dedup ids and checkpoints (`sources.sqlite`) and the alert outbox
//! (`outbox.sqlite`, unless `outbox.path` names another file). Every command resolves it the
//! same way, so `trailwatch alerts dead` finds the outbox `trailwatch run` writes:
//! `--state DIR` (or `TRAILWATCH_STATE`), then `state.dir` in the config, then
//! `$XDG_STATE_HOME/trailwatch`, then `~/.local/state/trailwatch`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Deserialize;
use trailwatch_config::{Config, expand_home};

/// `state:` in trailwatch.yaml.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateSection {
    /// The state folder (`~/` is expanded).
    pub dir: Option<String>,
}

/// `metrics:` in trailwatch.yaml.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsSection {
    /// Where `trailwatch run` serves `/metrics` (Prometheus text format). Default
    /// `127.0.0.1:9464`; `off` serves nothing.
    pub listen: Option<String>,
}

/// The default address of the metrics endpoint: loopback, the usual exporter port.
pub const DEFAULT_METRICS_LISTEN: &str = "127.0.0.1:9464";

/// The platform default: `$XDG_STATE_HOME/trailwatch` or `~/.local/state/trailwatch`.
pub fn default_state_dir() -> anyhow::Result<PathBuf> {
    if let Some(dir) = std::env::var_os("XDG_STATE_HOME").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir).join("trailwatch"));
    }
    let home = std::env::var_os("HOME")
        .context("neither XDG_STATE_HOME nor HOME is set; pass --state DIR")?;
    Ok(PathBuf::from(home).join(".local/state/trailwatch"))
}

/// Resolves the state folder (see the module docs) and creates it.
pub fn state_dir(flag: Option<&Path>, config: &Config) -> anyhow::Result<PathBuf> {
    let from_config = match config.section("state") {
        Some(section) => section
            .deserialize::<StateSection>()
            .map_err(|e| anyhow::anyhow!("invalid config:\n{e}"))?
            .dir
            .map(|d| expand_home(&d)),
        None => None,
    };
    let dir = match (flag, from_config) {
        (Some(dir), _) => dir.to_path_buf(),
        (None, Some(dir)) => dir,
        (None, None) => default_state_dir()?,
    };
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("cannot create state folder {}", dir.display()))?;
    Ok(dir)
}

/// The metrics address from the config: `None` when turned off.
pub fn metrics_listen(config: &Config) -> anyhow::Result<Option<SocketAddr>> {
    let listen = match config.section("metrics") {
        Some(section) => section
            .deserialize::<MetricsSection>()
            .map_err(|e| anyhow::anyhow!("invalid config:\n{e}"))?
            .listen
            .map(|l| (l, section.origin.clone(), section.line())),
        None => None,
    };
    match listen {
        None => Ok(Some(
            DEFAULT_METRICS_LISTEN
                .parse()
                .expect("the default address parses"),
        )),
        Some((text, _, _)) if text == "off" => Ok(None),
        Some((text, origin, line)) => text.parse().map(Some).map_err(|_| {
            anyhow::anyhow!(
                "invalid config:\n{origin}:{line}: metrics.listen {text:?} is not an address like 127.0.0.1:9464 (or off)"
            )
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> Config {
        trailwatch_config::parse("trailwatch.yaml", text).expect("valid config")
    }

    #[test]
    fn flag_beats_config_beats_default() {
        let dir = tempfile::tempdir().unwrap();
        let from_config = dir.path().join("from-config");
        let from_flag = dir.path().join("from-flag");
        let cfg = config(&format!("state:\n  dir: {}\n", from_config.display()));
        assert_eq!(state_dir(Some(&from_flag), &cfg).unwrap(), from_flag);
        assert!(from_flag.is_dir());
        assert_eq!(state_dir(None, &cfg).unwrap(), from_config);
    }

    #[test]
    fn unknown_state_key_names_the_line() {
        let cfg = config("accounts: {}\nstate:\n  folder: /tmp/x\n");
        let err = state_dir(None, &cfg).unwrap_err().to_string();
        assert!(err.contains("trailwatch.yaml:3"), "{err}");
        assert!(err.contains("folder"), "{err}");
    }

    #[test]
    fn metrics_address_default_off_and_bad() {
        assert_eq!(
            metrics_listen(&Config::default()).unwrap(),
            Some("127.0.0.1:9464".parse().unwrap())
        );
        assert_eq!(
            metrics_listen(&config("metrics: {listen: off}\n")).unwrap(),
            None
        );
        assert_eq!(
            metrics_listen(&config("metrics: {listen: \"127.0.0.1:0\"}\n")).unwrap(),
            Some("127.0.0.1:0".parse().unwrap())
        );
        let err = metrics_listen(&config("\nmetrics: {listen: nowhere}\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("trailwatch.yaml:2"), "{err}");
        assert!(err.contains("nowhere"), "{err}");
    }
}

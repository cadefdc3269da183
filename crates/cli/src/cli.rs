//! Flags, subcommands and exit codes.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::filter::TimeBound;

/// Exit status when the command did its job.
pub const EXIT_OK: u8 = 0;
/// Exit status when the command ran but found a failure it was asked to report
/// (`--strict` with skipped input, failing rule or pattern tests).
pub const EXIT_FAILED_CHECK: u8 = 1;
/// Exit status for bad flags, bad rules or bad config: nothing was scanned.
pub const EXIT_USAGE: u8 = 2;

/// Watch AWS CloudTrail for risky changes.
#[derive(Debug, Parser)]
#[command(name = "trailwatch", version, about, max_term_width = 100)]
pub struct Cli {
    /// Log filter for diagnostics on stderr (tracing syntax, e.g. `info` or `trailwatch=debug`).
    /// Default: `info` for `run`, `warn` for everything else.
    #[arg(long, global = true, env = "TRAILWATCH_LOG")]
    pub log: Option<String>,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Scan CloudTrail log files, folders or S3 prefixes (or `-` for stdin) and print alerts.
    Scan(ScanArgs),
    /// Follow a folder as new log files arrive, processing each once across restarts.
    Watch(WatchArgs),
    /// Run as a service: ingest from SQS, SNS and S3 as the config's `sources:` says, match,
    /// and deliver alerts through the durable outbox until SIGTERM.
    Run(RunArgs),
    /// Work with EventBridge event patterns.
    #[command(subcommand)]
    Pattern(PatternCommand),
    /// List, test and lint rules.
    #[command(subcommand)]
    Rules(RulesCommand),
    /// The alert delivery outbox: dead letters, resending, test alerts.
    #[command(subcommand)]
    Alerts(AlertsCommand),
    /// Remediation jobs: list them, read the audit trail, approve or reject.
    #[command(subcommand)]
    Remediation(RemediationCommand),
    /// Print the least-privilege IAM policy for the remediation actions of the loaded rules.
    IamPolicy(IamPolicyArgs),
}

/// Where the remediation database is: the config's `state.dir` or `--state`.
#[derive(Debug, Clone, Args)]
pub struct RemediationStore {
    /// The config file.
    #[arg(long, value_name = "FILE", env = "TRAILWATCH_CONFIG")]
    pub config: Option<PathBuf>,
    /// The state folder holding `remediation.sqlite` (see `trailwatch run --help`).
    #[arg(long, value_name = "DIR", env = "TRAILWATCH_STATE")]
    pub state: Option<PathBuf>,
}

/// `trailwatch remediation ...`.
#[derive(Debug, Subcommand)]
pub enum RemediationCommand {
    /// List remediation jobs, newest first.
    List {
        #[command(flatten)]
        #[allow(missing_docs)]
        store: RemediationStore,
        /// Only jobs in this status (dry-run, awaiting-approval, queued, running, succeeded,
        /// failed, rejected, expired, skipped).
        #[arg(long, value_name = "STATUS")]
        status: Option<String>,
        /// At most this many jobs.
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// Output format.
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
    /// Print the audit trail (of one job, or all) and verify its hash chain; exits 1 if the
    /// trail was altered.
    Log {
        /// Only this job's entries.
        #[arg(value_name = "JOB")]
        job: Option<String>,
        #[command(flatten)]
        #[allow(missing_docs)]
        store: RemediationStore,
        /// Output format.
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
    /// Approve a job waiting for approval; the service runs it next.
    Approve {
        /// The job id (`rem-…`, as the alert and `remediation list` show it).
        #[arg(value_name = "JOB")]
        job: String,
        /// Who approves (default: $USER), for the audit trail.
        #[arg(long, value_name = "NAME")]
        by: Option<String>,
        #[command(flatten)]
        #[allow(missing_docs)]
        store: RemediationStore,
    },
    /// Reject a job waiting for approval; nothing runs.
    Reject {
        /// The job id.
        #[arg(value_name = "JOB")]
        job: String,
        /// Who rejects (default: $USER), for the audit trail.
        #[arg(long, value_name = "NAME")]
        by: Option<String>,
        #[command(flatten)]
        #[allow(missing_docs)]
        store: RemediationStore,
    },
}

/// `trailwatch iam-policy`.
#[derive(Debug, Args)]
pub struct IamPolicyArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub rules: RuleArgs,
    /// Only rules whose remediation may act (approve or enforce mode in the config); by
    /// default every rule with a `remediate:` block, so the policy is ready before you
    /// switch them on.
    #[arg(long)]
    pub enforced_only: bool,
}

/// `trailwatch alerts ...`.
#[derive(Debug, Subcommand)]
pub enum AlertsCommand {
    /// List alerts that could not be delivered after every retry.
    Dead {
        /// The config file with `destinations`, `routes` and `outbox`.
        #[arg(long, value_name = "FILE", env = "TRAILWATCH_CONFIG")]
        config: Option<PathBuf>,
        /// The state folder holding the outbox (see `trailwatch run --help`).
        #[arg(long, value_name = "DIR", env = "TRAILWATCH_STATE")]
        state: Option<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
    /// Put dead letters back in the outbox and deliver them now.
    Retry {
        /// The config file.
        #[arg(long, value_name = "FILE", env = "TRAILWATCH_CONFIG")]
        config: Option<PathBuf>,
        /// The state folder holding the outbox (see `trailwatch run --help`).
        #[arg(long, value_name = "DIR", env = "TRAILWATCH_STATE")]
        state: Option<PathBuf>,
        /// Only this dead letter (repeatable; ids as `alerts dead` shows them).
        #[arg(long = "id", value_name = "ID")]
        ids: Vec<i64>,
        /// Only the dead letters of this destination.
        #[arg(long, value_name = "NAME")]
        destination: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
    /// Send a sample alert to one destination, to check its set-up.
    Test {
        /// The destination's name in the config.
        #[arg(value_name = "DESTINATION")]
        destination: String,
        /// The config file.
        #[arg(long, value_name = "FILE", env = "TRAILWATCH_CONFIG")]
        config: Option<PathBuf>,
        /// The state folder holding the outbox (see `trailwatch run --help`).
        #[arg(long, value_name = "DIR", env = "TRAILWATCH_STATE")]
        state: Option<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
}

/// Where rules and config come from.
#[derive(Debug, Clone, Args)]
pub struct RuleArgs {
    /// A rule file or folder of rule files (repeatable). Adds to the built-in pack.
    #[arg(long = "rules", value_name = "PATH")]
    pub rules: Vec<PathBuf>,
    /// Do not load the built-in rule pack.
    #[arg(long)]
    pub no_builtin: bool,
    /// The global config file (account aliases, business hours, trusted principals, ...).
    #[arg(long, value_name = "FILE", env = "TRAILWATCH_CONFIG")]
    pub config: Option<PathBuf>,
}

/// Which events to consider.
#[derive(Debug, Clone, Default, Args)]
pub struct FilterArgs {
    /// Only events at or after this time: RFC 3339, a date (UTC midnight), or an age like `24h`, `7d`.
    #[arg(long, value_name = "TIME")]
    pub since: Option<TimeBound>,
    /// Only events before this time (same forms as --since).
    #[arg(long, value_name = "TIME")]
    pub until: Option<TimeBound>,
    /// Only events of this account id (repeatable).
    #[arg(long = "account", value_name = "ID")]
    pub accounts: Vec<String>,
    /// Only events of this region (repeatable).
    #[arg(long = "region", value_name = "REGION")]
    pub regions: Vec<String>,
}

/// How alerts are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// A readable block per alert.
    Text,
    /// One JSON object per line.
    Json,
}

/// When to show a progress bar on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProgressMode {
    /// When stderr is a terminal.
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

/// Decoding limits.
#[derive(Debug, Clone, Args)]
pub struct LimitArgs {
    /// Stop decompressing a file after this many bytes (gzip-bomb guard). Accepts K/M/G suffixes.
    #[arg(long, value_name = "BYTES", default_value = "1G", value_parser = parse_size)]
    pub max_decompressed: u64,
    /// Skip a single record larger than this. Accepts K/M/G suffixes.
    #[arg(long, value_name = "BYTES", default_value = "8M", value_parser = parse_size)]
    pub max_record: u64,
}

/// `trailwatch scan`.
#[derive(Debug, Args)]
pub struct ScanArgs {
    /// Files or folders to scan (recursively), `s3://bucket/prefix` locations (an org-trail
    /// or account prefix, listed from `--since`), or `-` for stdin.
    #[arg(value_name = "PATH", required = true)]
    pub paths: Vec<PathBuf>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub rules: RuleArgs,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub filter: FilterArgs,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub limits: LimitArgs,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
    /// Exit non-zero when any input or record was skipped.
    #[arg(long)]
    pub strict: bool,
    /// Worker threads (default: one per core).
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// Print alerts as they are found instead of sorted by event time at the end.
    #[arg(long)]
    pub unordered: bool,
    /// Progress bar on stderr.
    #[arg(long, value_enum, default_value = "auto")]
    pub progress: ProgressMode,
    /// Print at most this many skip messages per input, then one line saying how many more
    /// there were (0: print them all). Every skip is counted in the summary either way.
    #[arg(long, value_name = "N", default_value = "10")]
    pub max_skip_messages: u64,
}

/// `trailwatch watch`.
#[derive(Debug, Args)]
pub struct WatchArgs {
    /// The folder to follow (recursively).
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// Where the checkpoint lives (default: `$XDG_STATE_HOME/trailwatch` or `~/.local/state/trailwatch`).
    #[arg(long, value_name = "DIR", env = "TRAILWATCH_STATE")]
    pub state: Option<PathBuf>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub rules: RuleArgs,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub limits: LimitArgs,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
    /// How long an event id is remembered for de-duplication.
    #[arg(long, value_name = "DURATION", default_value = "7d", value_parser = humantime::parse_duration)]
    pub dedup_horizon: std::time::Duration,
    /// Walk the folder this often even without file-system notifications (a safety net).
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = humantime::parse_duration)]
    pub rescan: std::time::Duration,
    /// Process what is there now, save the open rule windows for the next run, then exit.
    #[arg(long)]
    pub once: bool,
}

/// `trailwatch run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub rules: RuleArgs,
    /// The state folder: dedup ids, checkpoints, the outbox. Default: `state.dir` in the
    /// config, else `$XDG_STATE_HOME/trailwatch` or `~/.local/state/trailwatch`.
    #[arg(long, value_name = "DIR", env = "TRAILWATCH_STATE")]
    pub state: Option<PathBuf>,
    /// Serve `/metrics` on this address instead of the config's `metrics.listen`
    /// (default 127.0.0.1:9464); `off` serves none.
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<String>,
    /// Check the config, rules and sources, print what would run, and exit.
    #[arg(long)]
    pub check: bool,
}

/// `trailwatch pattern ...`.
#[derive(Debug, Subcommand)]
pub enum PatternCommand {
    /// Run pattern test cases from a JSON Lines file.
    Test {
        /// Lines of `{"pattern":…, "event":…, "match": true|false}` or `{"pattern":…, "error":"…"}`.
        #[arg(long, value_name = "FILE")]
        cases: PathBuf,
    },
    /// Validate a pattern file.
    Check {
        /// The pattern (a JSON file).
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
    /// Print the events that match a pattern.
    Match {
        /// The pattern (a JSON file).
        #[arg(value_name = "PATTERN_FILE")]
        pattern: PathBuf,
        /// Event files or folders (any format `scan` reads); `-` or nothing reads stdin.
        #[arg(value_name = "EVENTS")]
        events: Vec<PathBuf>,
        #[command(flatten)]
        #[allow(missing_docs)]
        limits: LimitArgs,
    },
}

/// `trailwatch rules ...`.
#[derive(Debug, Subcommand)]
pub enum RulesCommand {
    /// List the rules that would run.
    List {
        #[command(flatten)]
        #[allow(missing_docs)]
        rules: RuleArgs,
        /// Output format.
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
    /// Run the tests embedded in rule files (the built-in pack when no PATH is given).
    Test {
        /// Rule files or folders.
        #[arg(value_name = "PATH")]
        paths: Vec<PathBuf>,
        /// The global config file.
        #[arg(long, value_name = "FILE", env = "TRAILWATCH_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Check rule files for mistakes, such as event names that are not real AWS APIs.
    Lint {
        /// Rule files or folders (the built-in pack when none is given).
        #[arg(value_name = "PATH")]
        paths: Vec<PathBuf>,
        /// The global config file.
        #[arg(long, value_name = "FILE", env = "TRAILWATCH_CONFIG")]
        config: Option<PathBuf>,
    },
}

/// Parses sizes like `512`, `64K`, `8M`, `1G` (powers of 1024).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let (digits, unit) = match text.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => text.split_at(i),
        None => (text, ""),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{text:?} is not a size (e.g. 512, 64K, 8M, 1G)"))?;
    let shift = match unit
        .to_ascii_uppercase()
        .trim_end_matches("IB")
        .trim_end_matches('B')
    {
        "" => 0,
        "K" => 10,
        "M" => 20,
        "G" => 30,
        "T" => 40,
        _ => return Err(format!("{text:?} has an unknown unit (use K, M, G or T)")),
    };
    n.checked_mul(1u64 << shift)
        .ok_or_else(|| format!("{text:?} is too large"))
}

/// Runs the command line and returns the process exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let default_log = match cli.command {
        Command::Run(_) => "info",
        _ => "warn",
    };
    init_logging(cli.log.as_deref().unwrap_or(default_log));
    let code = match run(cli) {
        Ok(code) => code,
        // The reader of the output went away (`trailwatch scan | head`): stop quietly, as
        // pipelines expect.
        Err(err) if is_broken_pipe(&err) => EXIT_OK,
        Err(err) => {
            eprintln!("trailwatch: {err:#}");
            EXIT_USAGE
        }
    };
    ExitCode::from(code)
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

fn init_logging(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

/// Runs a parsed command line. Errors are bad input to the command itself (flags, rules,
/// config) and map to [`EXIT_USAGE`].
pub fn run(cli: Cli) -> anyhow::Result<u8> {
    match cli.command {
        Command::Scan(args) => crate::scan::run(args),
        Command::Watch(args) => crate::watch::run(args),
        Command::Run(args) => crate::run_cmd::run(args),
        Command::Pattern(cmd) => crate::pattern_cmd::run(cmd),
        Command::Rules(cmd) => crate::rules_cmd::run(cmd),
        Command::Alerts(cmd) => crate::alerts_cmd::run(cmd),
        Command::Remediation(cmd) => crate::remediation_cmd::run(cmd),
        Command::IamPolicy(args) => crate::remediation_cmd::iam_policy_cmd(args),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_units() {
        assert_eq!(parse_size("512"), Ok(512));
        assert_eq!(parse_size("64K"), Ok(64 << 10));
        assert_eq!(parse_size("8M"), Ok(8 << 20));
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        assert_eq!(parse_size("2gib"), Ok(2 << 30));
        assert!(parse_size("12Q").unwrap_err().contains("unknown unit"));
        assert!(parse_size("lots").is_err());
    }

    #[test]
    fn cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}

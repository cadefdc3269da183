//! The `trailwatch` command line: argument parsing, wiring of the pipeline
//! (sources → event → rules → output) and exit codes. The binary's `main` only calls
//! [`cli::main`], so tests drive the same code.

pub mod alerts_cmd;
pub mod approval_server;
pub mod cli;
pub mod filter;
pub mod gate_state;
pub mod inputs;
pub mod output;
pub mod pattern_cmd;
pub mod pipeline;
pub mod remediation_cmd;
pub mod rules_cmd;
pub mod ruleset;
pub mod run_cmd;
pub mod s3_inputs;
pub mod scan;
pub mod state;
pub mod summary;
pub mod watch;

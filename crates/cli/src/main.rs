//! The `trailwatch` binary: argv in, exit code out. Everything else lives in the library
//! so tests can drive it.
fn main() -> std::process::ExitCode {
    trailwatch::cli::main()
}

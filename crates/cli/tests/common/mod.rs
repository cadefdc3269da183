//! Helpers shared by the CLI tests: run the real binary, compare with golden files,
//! find `../shared`.

#![allow(dead_code)]

pub mod live;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `../shared` beside the repository, when present (CI always has it; a plain clone may not).
pub fn shared() -> Option<PathBuf> {
    let dir = repo_root().join("../shared");
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("note: ../shared is absent; skipping a test that needs its data");
        None
    }
}

/// The result of one run of the binary.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `trailwatch ARGS` from the repository root with no terminal, so no progress bar.
pub fn trailwatch(args: &[&str]) -> Run {
    trailwatch_with_stdin(args, None)
}

/// Same, feeding `stdin`.
pub fn trailwatch_with_stdin(args: &[&str], stdin: Option<&[u8]>) -> Run {
    run_binary(args, stdin, &[])
}

/// Same, with extra environment variables.
pub fn trailwatch_with_env(args: &[&str], env: &[(&str, &str)]) -> Run {
    run_binary(args, None, env)
}

fn run_binary(args: &[&str], stdin: Option<&[u8]>, env: &[(&str, &str)]) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_trailwatch"))
        .args(args)
        .envs(env.iter().copied())
        .current_dir(repo_root())
        .env_remove("TRAILWATCH_CONFIG")
        .env_remove("TRAILWATCH_STATE")
        .env("TRAILWATCH_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the trailwatch binary runs");
    {
        let mut pipe = child.stdin.take().expect("stdin is piped");
        if let Some(bytes) = stdin {
            pipe.write_all(bytes).expect("write stdin");
        }
    }
    let Output {
        status,
        stdout,
        stderr,
    } = child.wait_with_output().expect("wait for trailwatch");
    Run {
        code: status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}

/// Compares `actual` with the golden file `tests/golden/NAME`. With `UPDATE_GOLDEN=1` in
/// the environment the file is rewritten instead, so a reviewed change is one command.
pub fn assert_golden(name: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!(
            "golden file {} is missing; run with UPDATE_GOLDEN=1 to create it",
            path.display()
        )
    });
    if expected != actual {
        let diff: Vec<String> = expected
            .lines()
            .zip(actual.lines())
            .enumerate()
            .filter(|(_, (e, a))| e != a)
            .take(10)
            .map(|(i, (e, a))| format!("line {}:\n  expected: {e}\n  actual:   {a}", i + 1))
            .collect();
        panic!(
            "output differs from {} ({} vs {} lines); first differences:\n{}\n(run with UPDATE_GOLDEN=1 to accept)",
            path.display(),
            expected.lines().count(),
            actual.lines().count(),
            diff.join("\n")
        );
    }
}

/// The summary line `records: N in = ...` parsed into its numbers.
pub fn records_line(stderr: &str) -> Vec<u64> {
    let line = stderr
        .lines()
        .find(|l| l.starts_with("records: "))
        .unwrap_or_else(|| panic!("no records line in stderr:\n{stderr}"));
    line.split(|c: char| !c.is_ascii_digit() && c != ',')
        .filter(|s| !s.is_empty() && s.chars().any(|c| c.is_ascii_digit()))
        .map(|s| s.replace(',', "").parse().unwrap())
        .collect()
}

/// The `errors: N` count from the summary.
pub fn errors_count(stderr: &str) -> u64 {
    stderr
        .lines()
        .find_map(|l| l.strip_prefix("errors: "))
        .unwrap_or_else(|| panic!("no errors line in stderr:\n{stderr}"))
        .replace(',', "")
        .trim()
        .parse()
        .unwrap()
}

//! Turning `PATH…` arguments into the list of inputs to read.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use anyhow::Context;
use trailwatch_store::InputStamp;

use crate::s3_inputs::S3Object;

/// One thing to read: a file, or standard input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// A file on disk.
    File {
        /// Its path as given or found.
        path: PathBuf,
        /// Size in bytes when listed.
        size: u64,
        /// Modification time, nanoseconds since the epoch (0 when unknown).
        modified_ns: i64,
    },
    /// `-`: standard input.
    Stdin,
    /// An S3 object (`trailwatch scan s3://…`).
    S3(S3Object),
}

impl Input {
    /// How the input is named in messages and provenance.
    pub fn origin(&self) -> String {
        match self {
            Input::File { path, .. } => path.display().to_string(),
            Input::Stdin => "<stdin>".to_owned(),
            Input::S3(object) => object.origin(),
        }
    }

    /// Its size, when known up front.
    pub fn size(&self) -> u64 {
        match self {
            Input::File { size, .. } => *size,
            Input::Stdin => 0,
            Input::S3(object) => object.size,
        }
    }

    /// Opens it for reading.
    pub fn open(&self) -> io::Result<Box<dyn Read + Send>> {
        match self {
            Input::File { path, .. } => Ok(Box::new(File::open(path)?)),
            Input::Stdin => Ok(Box::new(io::stdin())),
            Input::S3(object) => object.open(),
        }
    }

    /// The checkpoint identity of a file input.
    pub fn stamp(&self) -> Option<InputStamp> {
        match self {
            Input::File {
                path,
                size,
                modified_ns,
            } => Some(InputStamp {
                origin: path.display().to_string(),
                size: *size,
                modified_ns: *modified_ns,
            }),
            Input::Stdin | Input::S3(_) => None,
        }
    }

    fn from_path(path: &Path) -> io::Result<Input> {
        let meta = std::fs::metadata(path)?;
        let modified_ns = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map(|d| d.as_nanos() as i64)
            .unwrap_or(0);
        Ok(Input::File {
            path: path.to_path_buf(),
            size: meta.len(),
            modified_ns,
        })
    }
}

/// What listing the arguments found.
#[derive(Debug, Default)]
pub struct Listing {
    /// Inputs to read, in a stable order (sorted by path within each argument).
    pub inputs: Vec<Input>,
    /// Files inside folders that were passed over because their names are not log names.
    pub ignored: Vec<PathBuf>,
}

/// True for names CloudTrail, `aws s3 sync` and our other sources produce: `.json`,
/// `.json.gz`, `.jsonl`, `.ndjson`, `.gz`. Files named directly on the command line are
/// always read, whatever their name.
pub fn looks_like_log(path: &Path) -> bool {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    if name.starts_with('.') {
        return false;
    }
    [".json", ".json.gz", ".jsonl", ".jsonl.gz", ".ndjson", ".gz"]
        .iter()
        .any(|ext| name.ends_with(ext))
}

/// Expands `PATH…` arguments: files as they are, folders recursively (following the
/// org-trail layout or any other), `-` as stdin.
pub fn list(paths: &[PathBuf]) -> anyhow::Result<Listing> {
    let mut listing = Listing::default();
    for arg in paths {
        if arg.as_os_str() == "-" {
            listing.inputs.push(Input::Stdin);
            continue;
        }
        let meta =
            std::fs::metadata(arg).with_context(|| format!("cannot read {}", arg.display()))?;
        if meta.is_file() {
            listing.inputs.push(Input::from_path(arg)?);
            continue;
        }
        let mut found = Vec::new();
        for entry in walkdir::WalkDir::new(arg)
            .follow_links(true)
            .sort_by_file_name()
        {
            let entry = entry.with_context(|| format!("cannot walk {}", arg.display()))?;
            if !entry.file_type().is_file() {
                continue;
            }
            if looks_like_log(entry.path()) {
                found.push(Input::from_path(entry.path())?);
            } else {
                listing.ignored.push(entry.path().to_path_buf());
            }
        }
        listing.inputs.extend(found);
    }
    Ok(listing)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_names_are_recognised() {
        for yes in [
            "a.json",
            "111_CloudTrail_us-east-1_20260101T0000Z_x.json.gz",
            "x.JSONL",
            "y.ndjson",
        ] {
            assert!(looks_like_log(Path::new(yes)), "{yes}");
        }
        for no in ["LICENSE", "README.md", "meta.yaml", ".hidden.json"] {
            assert!(!looks_like_log(Path::new(no)), "{no}");
        }
    }

    #[test]
    fn folders_are_walked_recursively_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let deep = dir
            .path()
            .join("AWSLogs/o-1/111/CloudTrail/us-east-1/2026/01/01");
        std::fs::create_dir_all(&deep).unwrap();
        std::fs::write(deep.join("b.json.gz"), b"x").unwrap();
        std::fs::write(deep.join("a.json.gz"), b"x").unwrap();
        std::fs::write(dir.path().join("LICENSE"), b"x").unwrap();
        let listing = list(&[dir.path().to_path_buf()]).unwrap();
        let names: Vec<_> = listing
            .inputs
            .iter()
            .map(|i| i.origin().rsplit('/').next().unwrap().to_owned())
            .collect();
        assert_eq!(names, ["a.json.gz", "b.json.gz"]);
        assert_eq!(listing.ignored.len(), 1);
    }

    #[test]
    fn missing_path_is_an_error_naming_it() {
        let err = list(&[PathBuf::from("/no/such/place")]).unwrap_err();
        assert!(format!("{err:#}").contains("/no/such/place"));
    }
}

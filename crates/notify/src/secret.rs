//! Secrets: read from an environment variable or a file, never inline; redacted in Debug and
//! Display so they cannot leak through logs or error messages.

use std::fmt;
use std::path::PathBuf;

/// A secret value (token, password, webhook URL with a token in it). `Debug` and `Display`
/// print `[redacted]`; only [`Secret::expose`] gives the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Where a secret comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// An environment variable, by name.
    Env(String),
    /// A file whose content (without a trailing newline) is the secret.
    File(PathBuf),
}

impl fmt::Display for SecretSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretSource::Env(name) => write!(f, "environment variable {name}"),
            SecretSource::File(path) => write!(f, "file {}", path.display()),
        }
    }
}

/// Why a secret could not be read. Never contains the secret.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The environment variable is unset, empty or not UTF-8.
    #[error("environment variable {0} is unset or empty")]
    MissingEnv(String),
    /// The file could not be read.
    #[error("cannot read secret file {path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is empty.
    #[error("secret file {0} is empty")]
    EmptyFile(PathBuf),
}

impl SecretSource {
    /// Reads the secret now (environment variables and files are read at delivery time, so a
    /// rotated secret is picked up without a restart).
    pub fn resolve(&self) -> Result<Secret, SecretError> {
        match self {
            SecretSource::Env(name) => match std::env::var(name) {
                Ok(v) if !v.is_empty() => Ok(Secret(v)),
                _ => Err(SecretError::MissingEnv(name.clone())),
            },
            SecretSource::File(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| SecretError::File {
                    path: path.clone(),
                    source,
                })?;
                let value = text.trim_end_matches(['\n', '\r']);
                if value.is_empty() {
                    return Err(SecretError::EmptyFile(path.clone()));
                }
                Ok(Secret(value.to_owned()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_is_redacted_in_debug_and_display() {
        let s = Secret::new("xoxb-very-secret");
        assert_eq!(format!("{s}"), "[redacted]");
        assert_eq!(format!("{s:?}"), "Secret([redacted])");
        assert!(!format!("{:?}", Some(&s)).contains("xoxb"));
        assert_eq!(s.expose(), "xoxb-very-secret");
    }

    #[test]
    fn file_secret_drops_trailing_newline() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "abc123\n").unwrap();
        let s = SecretSource::File(path.clone()).resolve().unwrap();
        assert_eq!(s.expose(), "abc123");
        std::fs::write(&path, "\n").unwrap();
        assert!(matches!(
            SecretSource::File(path).resolve(),
            Err(SecretError::EmptyFile(_))
        ));
        assert!(matches!(
            SecretSource::Env("TRAILWATCH_TEST_SURELY_UNSET_VAR".into()).resolve(),
            Err(SecretError::MissingEnv(_))
        ));
    }
}

//! Config errors: each names the file, the line, the column and the reason.

use std::fmt;

use crate::yaml::{Pos, YamlError};

/// One problem in a config file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{origin}:{}:{}: {reason}", pos.line, pos.col)]
pub struct ConfigError {
    /// The file (or other origin) the text came from.
    pub origin: String,
    /// Where in that file.
    pub pos: Pos,
    /// What is wrong.
    pub reason: String,
}

impl ConfigError {
    /// Builds an error.
    pub fn new(origin: &str, pos: Pos, reason: impl Into<String>) -> ConfigError {
        ConfigError {
            origin: origin.to_owned(),
            pos,
            reason: reason.into(),
        }
    }

    /// Wraps a YAML error.
    pub fn from_yaml(origin: &str, err: YamlError) -> ConfigError {
        ConfigError {
            origin: origin.to_owned(),
            pos: err.pos,
            reason: err.reason,
        }
    }
}

/// Every problem found in a config file, in file order. Never empty when returned as an error.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl ConfigErrors {
    /// The errors, in file order.
    pub fn errors(&self) -> &[ConfigError] {
        &self.0
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

//! The AWS API catalogue: which `eventSource`s exist and which operation names each has.
//! Generated from botocore's service models by `tools/gen-catalog.py` and embedded, so lint
//! can warn about names that would make a rule silently never fire.

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::sync::OnceLock;

/// The gzip'd catalogue: `<eventSource>\t<op> <op> ...` per line.
const DATA: &[u8] = include_bytes!("../data/aws-api-catalog.txt.gz");

/// Decompressed size cap (the file is ~1 MB unpacked).
const MAX_UNPACKED: u64 = 16 * 1024 * 1024;

/// Event sources and their operation names.
#[derive(Debug, Default)]
pub struct Catalog {
    sources: HashMap<String, HashSet<String>>,
}

impl Catalog {
    /// The embedded catalogue (decoded once).
    pub fn embedded() -> &'static Catalog {
        static CATALOG: OnceLock<Catalog> = OnceLock::new();
        CATALOG.get_or_init(|| {
            let mut text = String::new();
            let decoded =
                trailwatch_event::capped::gzip(DATA, MAX_UNPACKED).read_to_string(&mut text);
            match decoded {
                Ok(_) => Catalog::parse(&text),
                Err(_) => Catalog::default(),
            }
        })
    }

    /// Parses the catalogue's text form.
    pub fn parse(text: &str) -> Catalog {
        let mut sources = HashMap::new();
        for line in text.lines() {
            if let Some((src, ops)) = line.split_once('\t') {
                sources.insert(src.to_owned(), ops.split(' ').map(str::to_owned).collect());
            }
        }
        Catalog { sources }
    }

    /// Number of event sources.
    pub fn len(&self) -> usize {
        self.sources.len()
    }

    /// Whether the catalogue is empty.
    pub fn is_empty(&self) -> bool {
        self.sources.is_empty()
    }

    /// Whether `source` is a known eventSource.
    pub fn has_source(&self, source: &str) -> bool {
        self.sources.contains_key(source)
    }

    /// Whether `name` is an operation of `source` (Lambda's dated names such as
    /// `UpdateFunctionCode20150331v2` count as their base name).
    pub fn has_operation(&self, source: &str, name: &str) -> bool {
        self.sources
            .get(source)
            .is_some_and(|ops| ops.contains(name) || ops.contains(strip_version(name)))
    }

    /// Whether any source has an operation called `name`.
    pub fn any_has_operation(&self, name: &str) -> bool {
        let base = strip_version(name);
        self.sources
            .values()
            .any(|ops| ops.contains(name) || ops.contains(base))
    }

    /// Sources that have an operation called `name` (sorted), for hints.
    pub fn sources_of(&self, name: &str) -> Vec<&str> {
        let mut v: Vec<&str> = self
            .sources
            .iter()
            .filter(|(_, ops)| ops.contains(name))
            .map(|(s, _)| s.as_str())
            .collect();
        v.sort_unstable();
        v
    }

    /// The closest operation name of `source` to `name` (case-insensitive edit distance),
    /// for "did you mean" hints.
    pub fn suggest(&self, source: Option<&str>, name: &str) -> Option<String> {
        let lower = name.to_ascii_lowercase();
        let pool: Vec<&String> = match source.and_then(|s| self.sources.get(s)) {
            Some(ops) => ops.iter().collect(),
            None => self.sources.values().flatten().collect(),
        };
        pool.into_iter()
            .map(|op| (distance(&lower, &op.to_ascii_lowercase()), op))
            .filter(|(d, _)| *d <= 3.max(name.len() / 5))
            .min()
            .map(|(_, op)| op.clone())
    }

    /// The closest source name to `source`.
    pub fn suggest_source(&self, source: &str) -> Option<String> {
        self.sources
            .keys()
            .map(|s| (distance(source, s), s))
            .filter(|(d, _)| *d <= 3)
            .min()
            .map(|(_, s)| s.clone())
    }
}

/// Strips a Lambda-style API version suffix: `Name20150331` or `Name20150331v2`.
fn strip_version(name: &str) -> &str {
    let trimmed = match name.rfind('v') {
        Some(i) if i + 1 < name.len() && name[i + 1..].bytes().all(|b| b.is_ascii_digit()) => {
            &name[..i]
        }
        _ => name,
    };
    let digits = trimmed.bytes().rev().take_while(u8::is_ascii_digit).count();
    if digits == 8 && trimmed.len() > 8 {
        &trimmed[..trimmed.len() - 8]
    } else {
        name
    }
}

/// Levenshtein distance.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != *cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_catalog_knows_real_names() {
        let c = Catalog::embedded();
        assert!(c.len() > 300, "{}", c.len());
        let check = |src: &str, op: &str, want: bool| {
            assert_eq!(c.has_operation(src, op), want, "{src} {op}")
        };
        check("ec2.amazonaws.com", "AuthorizeSecurityGroupIngress", true);
        check("ec2.amazonaws.com", "AuthorizeSecurityGroupIngres", false);
        check("cloudtrail.amazonaws.com", "StopLogging", true);
        check("signin.amazonaws.com", "ConsoleLogin", true);
        check("iam.amazonaws.com", "CreateUser", true);
        check("s3.amazonaws.com", "PutBucketPolicy", true);
        check("lambda.amazonaws.com", "UpdateFunctionCode20150331v2", true);
        check("monitoring.amazonaws.com", "PutMetricAlarm", true);
        assert!(!c.has_source("ec3.amazonaws.com"));
        assert_eq!(
            c.suggest(Some("ec2.amazonaws.com"), "AuthorizeSecurityGroupIngres")
                .as_deref(),
            Some("AuthorizeSecurityGroupIngress")
        );
        assert_eq!(
            c.suggest_source("ec3.amazonaws.com").as_deref(),
            Some("ec2.amazonaws.com")
        );
        assert_eq!(strip_version("AddPermission20150331v2"), "AddPermission");
        assert_eq!(strip_version("GetObject"), "GetObject");
    }
}

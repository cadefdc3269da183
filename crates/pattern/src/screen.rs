//! A screen: rule an event out from a few field values known before it is scanned.
//!
//! A decoder that has already parsed an event's header knows some of its fields exactly
//! (say `detail.eventName`). Most patterns require one of those fields to hold a value from
//! a short list, so most events cannot match any pattern and need not be scanned at all.
//! A [`Screen`] keeps, per pattern branch, only the required slots on the known fields: a
//! relaxation of the branch, so "no branch passes the screen" implies "no pattern matches".

use crate::eval::{self, Val};
use crate::hash::FxMap;
use crate::index::Value;
use crate::pattern::Cond;

/// What the caller knows about one screened field of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Known<'a> {
    /// Nothing certain (not looked at, a non-string value, a possible duplicate): never
    /// rules anything out.
    #[default]
    Unknown,
    /// The field is certainly absent from the event.
    Absent,
    /// The field's only value is this string (unescaped).
    Str(&'a str),
}

/// A set of branch numbers.
#[derive(Debug, Clone, Default)]
struct Bits(Vec<u64>);

impl Bits {
    fn insert(&mut self, i: usize) {
        let word = i / 64;
        if self.0.len() <= word {
            self.0.resize(word + 1, 0);
        }
        self.0[word] |= 1 << (i % 64);
    }
}

/// One screened field: which branches admit which of its values.
#[derive(Debug, Clone, Default)]
struct FieldIndex {
    /// Branches whose verdict on this field the index leaves open: no required slot on
    /// it, or one whose conditions only [`eval::cond_matches`] can judge (kept in
    /// [`Screen::residual`]).
    free: Bits,
    /// Branches whose required slot here lists exact strings, by string.
    by_value: FxMap<Box<str>, Bits>,
}

/// A necessary condition for any of a matcher's patterns to match, over a fixed list of
/// fields. Built by [`crate::Matcher::screen`]; it describes the matcher as it was then.
///
/// Most slots list exact strings (`"eventName": ["CreateUser", "DeleteUser"]`); those go
/// into a per-field index from string to branches, so a verdict costs one lookup per known
/// field rather than a walk over every branch's conditions.
#[derive(Debug, Clone)]
pub struct Screen {
    fields: Vec<Box<str>>,
    index: Vec<FieldIndex>,
    /// Per branch, the required slots the index cannot decide: (field, conditions, one of
    /// which must hold).
    residual: Vec<Vec<(usize, Vec<Cond>)>>,
    /// Some branch has no required slot on a screened field: every event may match.
    open: bool,
}

/// Conditions the index decides exactly for a string value: exact strings (not IP
/// addresses, which also match other spellings) and conditions no string satisfies.
fn indexable(cond: &Cond) -> bool {
    matches!(
        cond,
        Cond::Str(_, None) | Cond::Num(_) | Cond::Bool(_) | Cond::Null
    )
}

impl Screen {
    pub(crate) fn new(fields: &[&str]) -> Screen {
        Screen {
            fields: fields.iter().map(|&f| f.into()).collect(),
            index: vec![FieldIndex::default(); fields.len()],
            residual: Vec::new(),
            open: false,
        }
    }

    /// Adds one branch, given its slots as (path, required, conditions).
    pub(crate) fn add_branch<'a>(
        &mut self,
        slots: impl IntoIterator<Item = (&'a str, bool, &'a [Cond])>,
    ) {
        let branch = self.residual.len();
        let mut indexed = vec![false; self.fields.len()];
        let mut residual = Vec::new();
        let mut any = false;
        for (path, required, conds) in slots {
            if !required {
                continue;
            }
            let Some(field) = self.fields.iter().position(|f| &**f == path) else {
                continue;
            };
            any = true;
            // One indexed slot per field and branch; any other is judged in full.
            if !indexed[field] && conds.iter().all(indexable) {
                indexed[field] = true;
                for cond in conds {
                    if let Cond::Str(s, None) = cond {
                        self.index[field]
                            .by_value
                            .entry(s.clone())
                            .or_default()
                            .insert(branch);
                    }
                }
            } else {
                residual.push((field, conds.to_vec()));
            }
        }
        for (field, done) in indexed.iter().enumerate() {
            if !done {
                self.index[field].free.insert(branch);
            }
        }
        if !any {
            self.open = true;
        }
        self.residual.push(residual);
    }

    /// The screened fields, in the order [`Screen::may_match`] takes their values.
    pub fn fields(&self) -> impl Iterator<Item = &str> {
        self.fields.iter().map(|f| &**f)
    }

    /// False only when no pattern can match an event whose screened fields are as
    /// `known` says (one entry per field, in [`Screen::fields`] order; missing entries
    /// count as unknown). True means the event must be matched in full.
    pub fn may_match(&self, known: &[Known<'_>]) -> bool {
        if self.open {
            return true;
        }
        let words = self.residual.len().div_ceil(64);
        // Branches still possible; the last word's unused bits never get set anywhere. On
        // the stack for up to 256 branches: this runs for every event.
        let mut on_stack = [u64::MAX; 4];
        let mut on_heap = Vec::new();
        let alive: &mut [u64] = if words <= on_stack.len() {
            &mut on_stack[..words]
        } else {
            on_heap.resize(words, u64::MAX);
            &mut on_heap
        };
        for (field, index) in self.index.iter().enumerate() {
            let admitted = match known.get(field).copied().unwrap_or_default() {
                Known::Unknown => continue,
                Known::Absent => None,
                Known::Str(s) => index.by_value.get(s),
            };
            let mut any = 0;
            for (w, word) in alive.iter_mut().enumerate() {
                let free = index.free.0.get(w).copied().unwrap_or(0);
                let by_value = admitted.and_then(|b| b.0.get(w)).copied().unwrap_or(0);
                *word &= free | by_value;
                any |= *word;
            }
            if any == 0 {
                return false;
            }
        }
        alive.iter().enumerate().any(|(w, &word)| {
            let mut word = word;
            while word != 0 {
                let branch = w * 64 + word.trailing_zeros() as usize;
                word &= word - 1;
                if self.residual_holds(branch, known) {
                    return true;
                }
            }
            false
        })
    }

    /// Whether a branch's slots outside the index admit the known values.
    fn residual_holds(&self, branch: usize, known: &[Known<'_>]) -> bool {
        let Some(checks) = self.residual.get(branch) else {
            return false;
        };
        checks.iter().all(
            |(field, conds)| match known.get(*field).copied().unwrap_or_default() {
                Known::Unknown => true,
                Known::Absent => false,
                Known::Str(s) => {
                    let val = Val {
                        v: Value::Str(s.as_bytes()),
                        exact: None,
                    };
                    conds.iter().any(|c| eval::cond_matches(c, &val))
                }
            },
        )
    }

    /// True when the screen can never rule an event out (some pattern has no required
    /// field among the screened ones).
    pub fn is_open(&self) -> bool {
        self.open
    }
}

#[cfg(test)]
mod tests {
    use super::Known::{Absent, Str, Unknown};
    use crate::{Matcher, Pattern};

    fn matcher(patterns: &[&str]) -> Matcher<usize> {
        let mut m = Matcher::new();
        for (i, p) in patterns.iter().enumerate() {
            m.add(i, &Pattern::parse(p).expect("valid pattern"));
        }
        m
    }

    const FIELDS: &[&str] = &["source", "detail.eventName", "detail.errorCode"];

    #[test]
    fn rules_out_events_no_branch_admits() {
        let m = matcher(&[
            r#"{"detail":{"eventName":["CreateUser","CreateAccessKey"],"errorCode":[{"exists":false}]}}"#,
            r#"{"source":["aws.health"],"detail":{"eventTypeCode":["X"]}}"#,
            r#"{"detail":{"errorCode":[{"prefix":"AccessDenied"}]}}"#,
        ]);
        let s = m.screen(FIELDS);
        assert!(!s.is_open());
        // eventName fits the first pattern: must be scanned.
        assert!(s.may_match(&[Str("aws.iam"), Str("CreateUser"), Absent]));
        // Nothing fits: an ordinary read call without an error.
        assert!(!s.may_match(&[Str("aws.ec2"), Str("DescribeInstances"), Absent]));
        // An error code the third pattern wants.
        assert!(s.may_match(&[
            Str("aws.ec2"),
            Str("DescribeInstances"),
            Str("AccessDeniedException")
        ]));
        // Unknown never rules out.
        assert!(s.may_match(&[Str("aws.ec2"), Unknown, Absent]));
        assert!(s.may_match(&[Unknown, Str("DescribeInstances"), Absent]));
        // Fewer values than fields: the rest are unknown.
        assert!(s.may_match(&[Str("aws.ec2")]));
    }

    #[test]
    fn a_pattern_without_a_required_screened_field_opens_the_screen() {
        // `exists: false` and unscreened fields give the screen nothing to test.
        let m = matcher(&[
            r#"{"detail":{"eventName":["CreateUser"]}}"#,
            r#"{"detail":{"errorCode":[{"exists":false}],"sourceIPAddress":["1.2.3.4"]}}"#,
        ]);
        let s = m.screen(FIELDS);
        assert!(s.is_open());
        assert!(s.may_match(&[Str("aws.ec2"), Str("DescribeInstances"), Absent]));
    }

    #[test]
    fn every_operator_is_judged_as_the_matcher_judges_it() {
        let m = matcher(&[
            r#"{"detail":{"eventName":[{"anything-but":["GetObject"]}]}}"#,
            r#"{"detail":{"eventName":[{"wildcard":"Delete*Bucket"}]}}"#,
            r#"{"detail":{"eventName":[{"equals-ignore-case":"stoplogging"}]}}"#,
            r#"{"detail":{"eventName":[{"exists":true}]}}"#,
        ]);
        let s = m.screen(FIELDS);
        for name in ["PutObject", "DeleteMyBucket", "StopLogging", "GetObject"] {
            let event = format!(r#"{{"source":"aws.s3","detail":{{"eventName":"{name}"}}}}"#);
            let matched = !m.matches(event.as_bytes()).expect("valid event").is_empty();
            assert!(
                matched,
                "{name}: the exists pattern matches every named event"
            );
            assert!(s.may_match(&[Str("aws.s3"), Str(name), Absent]), "{name}");
        }
        // No eventName at all: only `exists: true` could have admitted it, and it needs one.
        assert!(!s.may_match(&[Str("aws.s3"), Absent, Absent]));
    }

    #[test]
    fn ip_addresses_and_many_branches_are_judged_as_the_matcher_judges_them() {
        // 150 branches span three words of the index (on the stack), 300 span five (on
        // the heap).
        many_branches(150);
        many_branches(300);
    }

    fn many_branches(n: usize) {
        // An exact IP also matches other spellings of the address, so it must not be
        // indexed as a plain string.
        let mut patterns: Vec<String> = (0..n)
            .map(|i| {
                format!(
                    r#"{{"detail":{{"eventName":["Call{i}"],"errorCode":["E{}"]}}}}"#,
                    i % 7
                )
            })
            .collect();
        patterns.push(r#"{"detail":{"eventName":["10.0.0.1"]}}"#.to_owned());
        let refs: Vec<&str> = patterns.iter().map(String::as_str).collect();
        let m = matcher(&refs);
        let s = m.screen(FIELDS);
        let cases = [
            ("Call0", "E0"),
            ("Call149", "E2"),
            ("Call149", "E3"),
            ("Call299", "E5"),
            ("Call299", "E6"),
            ("Call64", "E1"),
            ("Call200", "E0"),
            ("10.0.0.1", "x"),
            ("10.0.0.01", "x"),
            ("010.0.0.1", "x"),
        ];
        for (name, code) in cases {
            let event = format!(
                r#"{{"source":"aws.s3","detail":{{"eventName":"{name}","errorCode":"{code}"}}}}"#
            );
            let matched = !m.matches(event.as_bytes()).expect("valid event").is_empty();
            let admitted = s.may_match(&[Str("aws.s3"), Str(name), Str(code)]);
            assert!(admitted || !matched, "{name} {code}: matches but ruled out");
            // Exact string branches are decided exactly.
            if name.starts_with("Call") {
                assert_eq!(admitted, matched, "{name} {code}");
            }
        }
    }
}

//! Parsing and validating a pattern into branches of field conditions.
//!
//! Like Ruler's `JsonRuleCompiler`, fields are written one by one into a
//! set of branches keyed by dot-joined path (a later write of the same path
//! replaces the earlier one: "last one wins"), and each `$or` forks the
//! branches built so far.

use std::collections::BTreeMap;
use std::str::FromStr;

use crate::cidr::{self, Ip, IpRange};
use crate::error::PatternError;
use crate::fold::fold;
use crate::json::{self, Json, Spanned};
use crate::number::{self, NumKey};
use crate::wildcard::{self, Wildcard};

/// At most this many branches after expanding `$or` (AWS's limit).
pub const MAX_OR_COMBINATIONS: usize = 1000;
/// Nesting limit for pattern JSON.
const MAX_PATTERN_DEPTH: usize = 128;

/// A parsed and validated event pattern.
#[derive(Debug, Clone, PartialEq)]
pub struct Pattern {
    pub(crate) branches: Vec<Branch>,
}

/// One alternative of a pattern after `$or` expansion: all fields must match.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Branch {
    /// Sorted by path, paths unique.
    pub(crate) fields: Vec<Field>,
}

/// The conditions on one dot-joined path; any one may match.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Field {
    pub(crate) path: Box<str>,
    pub(crate) conds: Vec<Cond>,
}

/// One match condition.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Cond {
    /// Exact string; a string that is an IP address also matches other
    /// spellings of that address (Ruler's `ipToRangeIfPossible`).
    Str(Box<str>, Option<Ip>),
    Num(NumKey),
    Bool(bool),
    Null,
    Prefix(Box<str>),
    Suffix(Box<str>),
    /// Folded operands.
    PrefixIc(Box<str>),
    SuffixIc(Box<str>),
    EqIc(Box<str>),
    Wildcard(Wildcard),
    AnythingBut(AnythingBut),
    Numeric(Range),
    Exists(bool),
    Cidr(IpRange),
}

/// The excluded set of an `anything-but`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum AnythingBut {
    Strs(Vec<Box<str>>),
    Nums(Vec<NumKey>),
    Prefixes(Vec<Box<str>>),
    Suffixes(Vec<Box<str>>),
    /// Folded.
    Ic(Vec<Box<str>>),
    Wildcards(Vec<Wildcard>),
}

/// A numeric interval; each bound is (value, inclusive).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Range {
    pub(crate) lo: Option<(f64, bool)>,
    pub(crate) hi: Option<(f64, bool)>,
}

impl Range {
    pub(crate) fn contains(&self, x: f64) -> bool {
        let lo_ok = match self.lo {
            None => true,
            Some((b, true)) => x >= b,
            Some((b, false)) => x > b,
        };
        let hi_ok = match self.hi {
            None => true,
            Some((b, true)) => x <= b,
            Some((b, false)) => x < b,
        };
        lo_ok && hi_ok
    }
}

/// Match-type keywords; an object using one inside `$or` turns the `$or`
/// into an ordinary field name, as in Ruler.
const KEYWORDS: &[&str] = &[
    "exactly",
    "prefix",
    "suffix",
    "equals-ignore-case",
    "wildcard",
    "anything-but",
    "numeric",
    "exists",
    "cidr",
];

impl Pattern {
    /// Parses and validates a pattern.
    pub fn parse(text: &str) -> Result<Pattern, PatternError> {
        let root = json::parse(text.as_bytes(), MAX_PATTERN_DEPTH)
            .map_err(|e| PatternError::syntax(e.offset, e.reason))?;
        let Json::Obj(members) = &root.value else {
            return Err(PatternError::new("", "Filter is not an object"));
        };
        let mut branches = vec![BTreeMap::new()];
        object(members, "", &mut branches)?;
        Ok(Pattern {
            branches: branches
                .into_iter()
                .map(|fields| Branch {
                    fields: fields
                        .into_iter()
                        .map(|(path, conds)| Field { path, conds })
                        .collect(),
                })
                .collect(),
        })
    }

    /// The number of alternatives after `$or` expansion.
    pub fn branch_count(&self) -> usize {
        self.branches.len()
    }

    /// The dot-joined paths of every field the pattern reads.
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.branches
            .iter()
            .flat_map(|b| b.fields.iter().map(|f| &*f.path))
    }
}

impl FromStr for Pattern {
    type Err = PatternError;

    fn from_str(s: &str) -> Result<Pattern, PatternError> {
        Pattern::parse(s)
    }
}

type Fields = BTreeMap<Box<str>, Vec<Cond>>;
type Members = [(Box<str>, Spanned)];

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_owned()
    } else {
        format!("{prefix}.{key}")
    }
}

fn object(
    members: &[(Box<str>, Spanned)],
    prefix: &str,
    branches: &mut Vec<Fields>,
) -> Result<(), PatternError> {
    if members.is_empty() {
        return Err(PatternError::new(prefix, "Empty objects are not allowed"));
    }
    for (key, value) in members {
        let alternatives = if &**key == "$or" {
            or_alternatives(&value.value)
        } else {
            None
        };
        if let Some(alternatives) = alternatives {
            or(alternatives, prefix, branches)?;
            continue;
        }
        let path = join(prefix, key);
        match &value.value {
            Json::Obj(inner) => object(inner, &path, branches)?,
            Json::Arr(items) => {
                let conds = leaf(items, &path)?;
                for b in branches.iter_mut() {
                    b.insert(path.clone().into(), conds.clone());
                }
            }
            _ => {
                return Err(PatternError::new(
                    &path,
                    format!("\"{key}\" must be an object or an array"),
                ));
            }
        }
    }
    Ok(())
}

/// The alternatives of a real `$or`: an array of at least two objects, none
/// keyed by a match-type keyword.
fn or_alternatives(value: &Json) -> Option<Vec<&Members>> {
    let Json::Arr(items) = value else { return None };
    if items.len() < 2 {
        return None;
    }
    items
        .iter()
        .map(|item| match &item.value {
            Json::Obj(m) if !m.iter().any(|(k, _)| KEYWORDS.contains(&&**k)) => Some(m.as_slice()),
            _ => None,
        })
        .collect()
}

fn or(
    alternatives: Vec<&Members>,
    prefix: &str,
    branches: &mut Vec<Fields>,
) -> Result<(), PatternError> {
    let base = std::mem::take(branches);
    for alt in alternatives {
        let mut forked = base.clone();
        object(alt, prefix, &mut forked)?;
        branches.append(&mut forked);
        if branches.len() > MAX_OR_COMBINATIONS {
            return Err(PatternError::new(
                prefix,
                format!(
                    "The $or expansion of the pattern exceeds {MAX_OR_COMBINATIONS} combinations"
                ),
            ));
        }
    }
    Ok(())
}

fn leaf(items: &[Spanned], path: &str) -> Result<Vec<Cond>, PatternError> {
    if items.is_empty() {
        return Err(PatternError::new(path, "Empty arrays are not allowed"));
    }
    let err = |reason: String| PatternError::new(path, reason);
    let mut conds = Vec::with_capacity(items.len());
    for item in items {
        let cond = match &item.value {
            Json::Str(s) => Cond::Str(s.clone(), cidr::parse_ip(s)),
            Json::Num(n) => Cond::Num(number::key(n)),
            Json::Bool(b) => Cond::Bool(*b),
            Json::Null => Cond::Null,
            Json::Obj(m) => expression(m).map_err(err)?,
            Json::Arr(_) => {
                return Err(err(
                    "Match value must be String, number, true, false, or null".into(),
                ));
            }
        };
        conds.push(cond);
    }
    Ok(conds)
}

fn one_key(m: &[(Box<str>, Spanned)]) -> Result<(&str, &Json), String> {
    match m {
        [] => Err("Match expression name not found".into()),
        [(k, v)] => Ok((k, &v.value)),
        _ => Err("Only one key allowed in match expression".into()),
    }
}

fn string<'a>(v: &'a Json, what: &str) -> Result<&'a str, String> {
    match v {
        Json::Str(s) => Ok(s),
        _ => Err(format!("{what} match pattern must be a string")),
    }
}

/// `{"equals-ignore-case": "x"}` inside `prefix`/`suffix`.
fn ignore_case_operand(v: &Json, what: &str) -> Result<Option<Box<str>>, String> {
    match v {
        Json::Obj(m) => match one_key(m)? {
            ("equals-ignore-case", Json::Str(s)) => Ok(Some(fold(s).into())),
            ("equals-ignore-case", _) => {
                Err("equals-ignore-case match pattern must be a string".into())
            }
            _ => Err(format!("{what} match pattern must be a string")),
        },
        _ => Ok(None),
    }
}

fn wildcard(text: &str) -> Result<Wildcard, String> {
    let w = Wildcard::parse(text)?;
    if w.too_complex() {
        return Err(wildcard::TOO_COMPLEX.into());
    }
    Ok(w)
}

fn expression(m: &[(Box<str>, Spanned)]) -> Result<Cond, String> {
    let (op, v) = one_key(m)?;
    Ok(match op {
        "exactly" => Cond::Str(string(v, "exact")?.into(), None),
        "prefix" => match ignore_case_operand(v, "prefix")? {
            Some(f) => Cond::PrefixIc(f),
            None => Cond::Prefix(string(v, "prefix")?.into()),
        },
        "suffix" => match ignore_case_operand(v, "suffix")? {
            Some(f) => Cond::SuffixIc(f),
            None => Cond::Suffix(string(v, "suffix")?.into()),
        },
        "equals-ignore-case" => Cond::EqIc(fold(string(v, "equals-ignore-case")?).into()),
        "wildcard" => Cond::Wildcard(wildcard(string(v, "wildcard")?)?),
        "anything-but" => Cond::AnythingBut(anything_but(v)?),
        "numeric" => Cond::Numeric(numeric(v)?),
        "exists" => match v {
            Json::Bool(b) => Cond::Exists(*b),
            _ => return Err("exists match pattern must be either true or false.".into()),
        },
        // Ruler reports a non-string cidr operand with the prefix wording.
        "cidr" => Cond::Cidr(cidr::parse_cidr(string(v, "prefix")?)?),
        other => return Err(format!("Unrecognized match type {other}")),
    })
}

const AB_SHAPE: &str = "Value of anything-but must be an array or single string/number value.";

fn anything_but(v: &Json) -> Result<AnythingBut, String> {
    match v {
        Json::Str(s) => Ok(AnythingBut::Strs(vec![s.clone()])),
        Json::Num(n) => Ok(AnythingBut::Nums(vec![number::key(n)])),
        Json::Arr(items) => {
            let (mut strs, mut nums) = (Vec::new(), Vec::new());
            for item in items {
                match &item.value {
                    Json::Str(s) => strs.push(s.clone()),
                    Json::Num(n) => nums.push(number::key(n)),
                    _ => {
                        return Err(
                            "Inside anything but list, start|null|boolean is not supported.".into(),
                        );
                    }
                }
            }
            match (strs.is_empty(), nums.is_empty()) {
                (false, true) => Ok(AnythingBut::Strs(strs)),
                (true, false) => Ok(AnythingBut::Nums(nums)),
                _ => Err(
                    "Inside anything but list, either all values are number or string, mixed type is not supported"
                        .into(),
                ),
            }
        }
        Json::Obj(m) => {
            let (op, operand) = one_key(m)?;
            match op {
                "prefix" | "suffix" => {
                    let list = string_list(
                        operand,
                        || AB_SHAPE.to_owned(),
                        || "prefix/suffix match pattern must be a string".to_owned(),
                    )?;
                    if list.iter().any(|s| s.is_empty()) {
                        return Err("Null prefix/suffix not allowed".into());
                    }
                    Ok(if op == "prefix" {
                        AnythingBut::Prefixes(list)
                    } else {
                        AnythingBut::Suffixes(list)
                    })
                }
                "equals-ignore-case" => {
                    let msg = || {
                        "Inside anything-but/equals-ignore-case list, number|start|null|boolean is not supported."
                            .to_owned()
                    };
                    let list = string_list(operand, msg, msg)?;
                    Ok(AnythingBut::Ic(
                        list.iter().map(|s| fold(s).into()).collect(),
                    ))
                }
                "wildcard" => {
                    let msg = || "wildcard match pattern must be a string".to_owned();
                    let list = string_list(operand, msg, msg)?;
                    Ok(AnythingBut::Wildcards(
                        list.iter().map(|s| wildcard(s)).collect::<Result<_, _>>()?,
                    ))
                }
                other => Err(format!("Unsupported anything-but pattern: {other}")),
            }
        }
        _ => Err(AB_SHAPE.into()),
    }
}

/// A string or a non-empty list of strings. `shape` words a wrong operand
/// type, `item` a wrong list item.
fn string_list(
    v: &Json,
    shape: impl Fn() -> String,
    item: impl Fn() -> String,
) -> Result<Vec<Box<str>>, String> {
    match v {
        Json::Str(s) => Ok(vec![s.clone()]),
        Json::Arr(items) if !items.is_empty() => items
            .iter()
            .map(|i| match &i.value {
                Json::Str(s) => Ok(s.clone()),
                _ => Err(item()),
            })
            .collect(),
        Json::Arr(_) => Err("Empty arrays are not allowed".into()),
        Json::Num(_) => Err(item()),
        _ => Err(shape()),
    }
}

fn numeric(v: &Json) -> Result<Range, String> {
    let Json::Arr(items) = v else {
        return Err("Value of numeric must be an array.".into());
    };
    let text = |i: usize| match items.get(i).map(|s| &s.value) {
        None => "]".to_owned(),
        Some(Json::Str(s)) => s.to_string(),
        Some(Json::Num(n)) => n.to_string(),
        Some(other) => format!("{other:?}"),
    };
    let op_at = |i: usize| match items.get(i).map(|s| &s.value) {
        Some(Json::Str(s)) => Some(&**s),
        _ => None,
    };
    let num_at = |i: usize, op: &str| -> Result<f64, String> {
        match items.get(i).map(|s| &s.value) {
            Some(Json::Num(n)) => {
                number::exact_f64(n).ok_or_else(|| format!("Cannot compare number {n}"))
            }
            _ => Err(format!("Value of {op} must be numeric")),
        }
    };
    let Some(op) = op_at(0) else {
        return Err(format!("Invalid member in numeric match: {}", text(0)));
    };
    let end = |i: usize| {
        if items.len() > i {
            Err("Too many elements in numeric expression".to_owned())
        } else {
            Ok(())
        }
    };
    let range = match op {
        "=" => {
            let x = num_at(1, "equals")?;
            end(2)?;
            Range {
                lo: Some((x, true)),
                hi: Some((x, true)),
            }
        }
        "<" | "<=" => {
            let x = num_at(1, op)?;
            end(2)?;
            Range {
                lo: None,
                hi: Some((x, op == "<=")),
            }
        }
        ">" | ">=" => {
            let lo = Some((num_at(1, op)?, op == ">="));
            if items.len() == 2 {
                return Ok(Range { lo, hi: None });
            }
            let Some(op2) = op_at(2) else {
                return Err(format!("Bad value in numeric range: {}", text(2)));
            };
            if op2 != "<" && op2 != "<=" {
                return Err(format!("Bad numeric range operator: {op2}"));
            }
            let top = num_at(3, op2)?;
            if items.len() > 4 {
                return Err("Too many terms in numeric range expression".into());
            }
            if lo.is_some_and(|(b, _)| b >= top) {
                return Err("Bottom must be less than top".into());
            }
            Range {
                lo,
                hi: Some((top, op2 == "<=")),
            }
        }
        other => return Err(format!("Unrecognized numeric range operator: {other}")),
    };
    Ok(range)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_err(text: &str, expect: &str) {
        match Pattern::parse(text) {
            Ok(p) => panic!("{text}: accepted as {p:?}"),
            Err(e) => assert_eq!(e.to_string(), expect, "{text}"),
        }
    }

    fn check_ok(text: &str, branches: usize) {
        match Pattern::parse(text) {
            Ok(p) => assert_eq!(p.branch_count(), branches, "{text}"),
            Err(e) => panic!("{text}: {e}"),
        }
    }

    #[test]
    fn rejections() {
        check_err(r#"{"a": 42}"#, r#"a: "a" must be an object or an array"#);
        check_err(
            r#"{"detail":{"eventName":[]}}"#,
            "detail.eventName: Empty arrays are not allowed",
        );
        check_err(r#"{"a":{}}"#, "a: Empty objects are not allowed");
        check_err("{}", "Empty objects are not allowed");
        check_err("[]", "Filter is not an object");
        check_err(
            r#"{"a":[{"NUMERIC":[">",1]}]}"#,
            "a: Unrecognized match type NUMERIC",
        );
        check_err(
            r#"{"a":[{"prefix":["x"]}]}"#,
            "a: prefix match pattern must be a string",
        );
        check_err(
            r#"{"a":[{"wildcard":"a**"}]}"#,
            "a: Consecutive wildcard characters at pos 2",
        );
        check_err(
            r#"{"a":[{"wildcard":"*:*:*:*:*:event-bus/*"}]}"#,
            &format!("a: {}", wildcard::TOO_COMPLEX),
        );
        check_err(
            r#"{"a":[{"numeric":[">",0,">",0]}]}"#,
            "a: Bad numeric range operator: >",
        );
        check_err(
            r#"{"a":[{"numeric":["<"]}]}"#,
            "a: Value of < must be numeric",
        );
        check_err(
            r#"{"a":[{"numeric":[">",5,"<",1]}]}"#,
            "a: Bottom must be less than top",
        );
        check_err(
            r#"{"a":[{"numeric":"5"}]}"#,
            "a: Value of numeric must be an array.",
        );
        check_err(
            r#"{"a":[{"cidr":"10.0.0.1"}]}"#,
            "a: Malformed CIDR, one '/' required",
        );
        check_err(
            r#"{"a":[{"anything-but":null}]}"#,
            &format!("a: {AB_SHAPE}"),
        );
        check_err(
            r#"{"a":[{"anything-but":{"prefix":{"equals-ignore-case":"f"}}}]}"#,
            &format!("a: {AB_SHAPE}"),
        );
        check_err(
            r#"{"a":[{"anything-but":{"prefix":""}}]}"#,
            "a: Null prefix/suffix not allowed",
        );
        check_err(
            r#"{"a":[{"anything-but":[null]}]}"#,
            "a: Inside anything but list, start|null|boolean is not supported.",
        );
        check_err(
            r#"{"a":[{"anything-but":{"equals-ignore-case":[1]}}]}"#,
            "a: Inside anything-but/equals-ignore-case list, number|start|null|boolean is not supported.",
        );
        check_err(
            r#"{"a":[{"exists":"false"}]}"#,
            "a: exists match pattern must be either true or false.",
        );
        check_err(r#"{"$or":[{"a":["1"]}]}"#, "$or: Unrecognized match type a");
        check_err(
            r#"{"a":[{"prefix":"x","suffix":"y"}]}"#,
            "a: Only one key allowed in match expression",
        );
        check_err(
            r#"{"a":[[1]]}"#,
            "a: Match value must be String, number, true, false, or null",
        );
        check_err(
            r#"{"a": [1,}"#,
            "Invalid JSON at byte 9: expected a JSON value",
        );
        assert_eq!(
            Pattern::parse(r#"{"a": [1,}"#).unwrap_err().offset(),
            Some(9)
        );
    }

    #[test]
    fn or_limit() {
        let alt = |k: &str| {
            format!(
                r#"{{"$or":[{{"{k}1":["x"]}},{{"{k}2":["x"]}},{{"{k}3":["x"]}},{{"{k}4":["x"]}}]}}"#
            )
        };
        // 4^5 = 1024 > 1000; 4^4 = 256 is fine.
        let four = format!(
            r#"{{"a":{},"b":{},"c":{},"d":{}}}"#,
            alt("a"),
            alt("b"),
            alt("c"),
            alt("d")
        );
        check_ok(&four, 256);
        let five = format!(
            r#"{{"a":{},"b":{},"c":{},"d":{},"e":{}}}"#,
            alt("a"),
            alt("b"),
            alt("c"),
            alt("d"),
            alt("e")
        );
        assert!(Pattern::parse(&five).unwrap_err().reason().contains("1000"));
    }

    #[test]
    fn structure() {
        check_ok(r#"{"a":["x"],"$or":[{"b":["y"]},{"c":["z"]}]}"#, 2);
        check_ok(r#"{"$or":[{"prefix":"x"},{"suffix":"y"}]}"#, 1);
        // Last one wins, also across dot-joined spellings.
        let p = Pattern::parse(r#"{"a.b":["x"],"a":{"b":["y"]}}"#).unwrap();
        assert_eq!(p.branches[0].fields.len(), 1);
        assert_eq!(
            p.branches[0].fields[0].conds,
            vec![Cond::Str("y".into(), None)]
        );
        let p: Pattern = r#"{"a":[300, {"numeric":["=",3.0e2]}]}"#.parse().unwrap();
        assert_eq!(p.paths().collect::<Vec<_>>(), ["a"]);
    }
}

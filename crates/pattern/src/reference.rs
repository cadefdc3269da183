//! A reference interpreter: simple, obviously correct, slow. It parses the
//! whole event into a tree, lists every leaf with its path and array trail,
//! and tries every assignment of leaves to the pattern's fields. It is the
//! oracle for property tests of the compiled [`Matcher`](crate::Matcher).

use crate::cidr;
use crate::error::{EventError, EventErrorKind};
use crate::fold::fold;
use crate::json::{self, Json};
use crate::number::{self, NumKey};
use crate::pattern::{AnythingBut, Branch, Cond, Pattern};

/// The default nesting limit for events.
pub const DEFAULT_MAX_DEPTH: usize = 256;

/// Does `pattern` match the event? Same semantics as the compiled matcher.
pub fn matches(pattern: &Pattern, event_json: &[u8]) -> Result<bool, EventError> {
    let root = parse_event(event_json, DEFAULT_MAX_DEPTH)?;
    let mut leaves = Vec::new();
    walk(&root, String::new(), &mut Vec::new(), &mut 0, &mut leaves);
    Ok(pattern.branches.iter().any(|b| branch_matches(b, &leaves)))
}

/// One leaf of the event: its dot-joined path, value, and the (array,
/// element) pairs on the way to it. Arrays are numbered in document order.
struct Leaf<'a> {
    path: String,
    value: &'a Json,
    trail: Vec<(usize, usize)>,
}

fn parse_event(event: &[u8], max_depth: usize) -> Result<Json, EventError> {
    let root = json::parse(event, max_depth).map_err(|e| {
        let kind = if e.reason == json::TOO_DEEP {
            EventErrorKind::TooDeep
        } else {
            EventErrorKind::Syntax(e.reason)
        };
        EventError::new(kind, e.offset)
    })?;
    match root.value {
        Json::Obj(_) => Ok(root.value),
        _ => Err(EventError::new(EventErrorKind::NotAnObject, root.start)),
    }
}

fn walk<'a>(
    v: &'a Json,
    path: String,
    trail: &mut Vec<(usize, usize)>,
    arrays: &mut usize,
    out: &mut Vec<Leaf<'a>>,
) {
    match v {
        Json::Obj(members) => {
            for (k, child) in members {
                let p = if path.is_empty() {
                    k.to_string()
                } else {
                    format!("{path}.{k}")
                };
                walk(&child.value, p, trail, arrays, out);
            }
        }
        Json::Arr(items) => {
            let id = *arrays;
            *arrays += 1;
            for (i, item) in items.iter().enumerate() {
                trail.push((id, i));
                walk(&item.value, path.clone(), trail, arrays, out);
                trail.pop();
            }
        }
        _ => out.push(Leaf {
            path,
            value: v,
            trail: trail.clone(),
        }),
    }
}

/// Two leaves may be combined unless they sit in different elements of the
/// same array.
fn consistent(a: &[(usize, usize)], b: &[(usize, usize)]) -> bool {
    a.iter()
        .all(|(arr, i)| b.iter().all(|(arr2, j)| arr != arr2 || i == j))
}

fn branch_matches(branch: &Branch, leaves: &[Leaf<'_>]) -> bool {
    // For each field: the leaves it could use, and whether absence is allowed.
    let options: Vec<(Vec<&Leaf<'_>>, bool, &str)> = branch
        .fields
        .iter()
        .map(|f| {
            let usable = leaves
                .iter()
                .filter(|l| *l.path == *f.path && f.conds.iter().any(|c| cond_matches(c, l.value)))
                .collect();
            let absent_ok = f.conds.contains(&Cond::Exists(false));
            (usable, absent_ok, &*f.path)
        })
        .collect();
    let mut chosen: Vec<&Leaf<'_>> = Vec::new();
    let mut absent: Vec<&str> = Vec::new();
    search(&options, &mut chosen, &mut absent, leaves)
}

fn search<'l>(
    options: &[(Vec<&'l Leaf<'l>>, bool, &'l str)],
    chosen: &mut Vec<&'l Leaf<'l>>,
    absent: &mut Vec<&'l str>,
    leaves: &'l [Leaf<'l>],
) -> bool {
    let Some(((usable, absent_ok, path), rest)) = options.split_first() else {
        // Every field assigned: absent fields must have no leaf that could
        // belong to the same array elements as the chosen leaves.
        return absent.iter().all(|p| {
            !leaves
                .iter()
                .any(|l| *l.path == **p && chosen.iter().all(|c| consistent(&c.trail, &l.trail)))
        });
    };
    for leaf in usable {
        if chosen.iter().all(|c| consistent(&c.trail, &leaf.trail)) {
            chosen.push(leaf);
            let ok = search(rest, chosen, absent, leaves);
            chosen.pop();
            if ok {
                return true;
            }
        }
    }
    if *absent_ok {
        absent.push(path);
        let ok = search(rest, chosen, absent, leaves);
        absent.pop();
        if ok {
            return true;
        }
    }
    false
}

fn num_key(n: &str) -> NumKey {
    number::key(n)
}

fn cond_matches(cond: &Cond, v: &Json) -> bool {
    match (cond, v) {
        (Cond::Exists(present), _) => *present,
        (Cond::Str(s, ip), Json::Str(e)) => {
            s == e || ip.is_some_and(|ip| cidr::parse_ip(e) == Some(ip))
        }
        (Cond::Num(k), Json::Num(n)) => *k == num_key(n),
        (Cond::Bool(b), Json::Bool(e)) => b == e,
        (Cond::Null, Json::Null) => true,
        (Cond::Prefix(p), Json::Str(e)) => e.starts_with(&**p),
        (Cond::Suffix(p), Json::Str(e)) => e.ends_with(&**p),
        (Cond::PrefixIc(p), Json::Str(e)) => fold(e).starts_with(&**p),
        (Cond::SuffixIc(p), Json::Str(e)) => fold(e).ends_with(&**p),
        (Cond::EqIc(p), Json::Str(e)) => *fold(e) == **p,
        (Cond::Wildcard(w), Json::Str(e)) => glob(&w.segs, e.as_bytes()),
        (Cond::Numeric(r), Json::Num(n)) => number::exact_f64(n).is_some_and(|x| r.contains(x)),
        (Cond::Cidr(r), Json::Str(e)) => cidr::parse_ip(e).is_some_and(|ip| r.contains(ip)),
        (Cond::AnythingBut(ab), v) => !excluded(ab, v),
        _ => false,
    }
}

/// Is the (present) value excluded by the anything-but? Only values of the
/// excluded kind can be excluded; everything else, `null` included, passes.
fn excluded(ab: &AnythingBut, v: &Json) -> bool {
    match (ab, v) {
        (AnythingBut::Strs(list), Json::Str(e)) => list.iter().any(|s| s == e),
        (AnythingBut::Nums(list), Json::Num(n)) => list.contains(&num_key(n)),
        (AnythingBut::Prefixes(list), Json::Str(e)) => list.iter().any(|p| e.starts_with(&**p)),
        (AnythingBut::Suffixes(list), Json::Str(e)) => list.iter().any(|p| e.ends_with(&**p)),
        (AnythingBut::Ic(list), Json::Str(e)) => list.iter().any(|p| *fold(e) == **p),
        (AnythingBut::Wildcards(list), Json::Str(e)) => {
            list.iter().any(|w| glob(&w.segs, e.as_bytes()))
        }
        _ => false,
    }
}

/// Textbook dynamic-programming glob: `dp[j]` says whether the tokens so
/// far can match the first `j` bytes.
fn glob(segs: &[Box<[u8]>], v: &[u8]) -> bool {
    let mut dp = vec![false; v.len() + 1];
    dp[0] = true;
    for (i, seg) in segs.iter().enumerate() {
        if i > 0 {
            // A star: anything reachable stays reachable further right.
            for j in 1..=v.len() {
                dp[j] = dp[j] || dp[j - 1];
            }
        }
        for &c in seg.iter() {
            for j in (1..=v.len()).rev() {
                dp[j] = dp[j - 1] && v[j - 1] == c;
            }
            dp[0] = false;
        }
    }
    dp[v.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(pattern: &str, event: &str, expect: bool) {
        let p = Pattern::parse(pattern).unwrap();
        assert_eq!(
            matches(&p, event.as_bytes()).unwrap(),
            expect,
            "{pattern} on {event}"
        );
    }

    #[test]
    fn semantics() {
        check(r#"{"a":["x"]}"#, r#"{"a":["y","x"]}"#, true);
        check(r#"{"a":[null]}"#, r#"{"a":[]}"#, false);
        check(r#"{"a":[{"exists":true}]}"#, r#"{"a":[]}"#, false);
        check(r#"{"a":[{"exists":false}]}"#, r#"{"a":[]}"#, true);
        check(r#"{"a":[{"exists":false}]}"#, r#"{"a":{"b":1}}"#, true);
        check(r#"{"a":[{"exists":true}]}"#, r#"{"a":null}"#, true);
        check(r#"{"a":[{"anything-but":"x"}]}"#, r#"{"a":null}"#, true);
        check(r#"{"a":[{"anything-but":"x"}]}"#, r#"{}"#, false);
        check(r#"{"a":[300]}"#, r#"{"a":3.0e2}"#, true);
        check(r#"{"a":{"b.c":["x"]}}"#, r#"{"a.b":{"c":"x"}}"#, true);
        check(
            r#"{"e":{"f":["A"],"l":["J"]}}"#,
            r#"{"e":[{"f":"A","l":"S"},{"f":"P","l":"J"}]}"#,
            false,
        );
        check(
            r#"{"e":{"f":["A"],"l":["J"]}}"#,
            r#"{"e":[{"f":"A","l":"S"},{"f":"A","l":"J"}]}"#,
            true,
        );
        check(
            r#"{"d":{"a":[{"exists":true}],"b":[{"exists":false}]}}"#,
            r#"{"d":[{"a":1}]}"#,
            true,
        );
        check(
            r#"{"d":{"a":[{"exists":true}],"b":[{"exists":false}]}}"#,
            r#"{"d":[{"a":1,"b":2}]}"#,
            false,
        );
        check(r#"{"a":[{"wildcard":"a*b*c"}]}"#, r#"{"a":"aXbYbc"}"#, true);
    }
}

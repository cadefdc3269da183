//! `for_each`: named paths to lists. The rule is evaluated once per combination of items,
//! so a security-group change with two permissions of three ranges each gives six
//! evaluations — never just the first item.
//!
//! A path starts at `record` (the CloudTrail record), `event` (the envelope) or an earlier
//! binding, then names members with dots. A list met on the way is walked element by
//! element (so nested lists flatten); `[*]` may be written after a segment for clarity. A
//! list at the end gives its elements; a single value gives itself; a missing value gives
//! nothing. A binding may list several paths; their items are concatenated.

use serde_json::Value;

/// At most this many combinations per event; the rest are dropped (and counted).
pub const MAX_ITEMS: usize = 1000;

/// One compiled path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Path {
    /// The root name: `record`, `event` or a binding.
    pub root: String,
    /// Member names after the root.
    pub segments: Vec<String>,
}

impl Path {
    /// Parses `root.a.b[*].c`.
    pub fn parse(text: &str) -> Result<Path, String> {
        let mut parts = text.trim().split('.');
        let root = parts
            .next()
            .unwrap_or("")
            .trim_end_matches("[*]")
            .to_owned();
        if root.is_empty() {
            return Err(format!("empty for_each path {text:?}"));
        }
        let mut segments = Vec::new();
        for p in parts {
            let p = p.trim_end_matches("[*]");
            if p.is_empty() || p.contains(['[', ']', ' ']) {
                return Err(format!("bad segment {p:?} in for_each path {text:?}"));
            }
            segments.push(p.to_owned());
        }
        Ok(Path { root, segments })
    }

    /// The items this path yields from its root value.
    pub fn items<'a>(&self, root: &'a Value, out: &mut Vec<&'a Value>) {
        let mut cur: Vec<&'a Value> = vec![root];
        for seg in &self.segments {
            let mut next = Vec::with_capacity(cur.len());
            for v in cur {
                step(v, seg, &mut next);
            }
            cur = next;
        }
        for v in cur {
            match v {
                Value::Array(a) => out.extend(a.iter()),
                Value::Null => {}
                other => out.push(other),
            }
        }
    }
}

fn step<'a>(v: &'a Value, seg: &str, out: &mut Vec<&'a Value>) {
    match v {
        Value::Object(o) => {
            if let Some(x) = o.get(seg) {
                out.push(x);
            }
        }
        Value::Array(a) => {
            for x in a {
                step(x, seg, out);
            }
        }
        _ => {}
    }
}

/// One binding: a name and the paths whose items it takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    /// The variable name.
    pub name: String,
    /// Paths, concatenated.
    pub paths: Vec<Path>,
}

/// The items of one evaluation: (binding name, item) in binding order.
pub type Combination = Vec<(String, Value)>;

/// Expands bindings into combinations. `roots` gives `record` and `event`. Returns the
/// combinations and how many were dropped past [`MAX_ITEMS`].
pub fn expand(bindings: &[Binding], roots: &[(&str, &Value)]) -> (Vec<Combination>, usize) {
    let mut combos: Vec<Combination> = vec![Vec::new()];
    let mut dropped = 0;
    for b in bindings {
        let mut next = Vec::new();
        for combo in &combos {
            let mut items = Vec::new();
            for p in &b.paths {
                let root = combo
                    .iter()
                    .rev()
                    .find(|(n, _)| *n == p.root)
                    .map(|(_, v)| v)
                    .or_else(|| roots.iter().find(|(n, _)| *n == p.root).map(|(_, v)| *v));
                if let Some(root) = root {
                    p.items(root, &mut items);
                }
            }
            for it in items {
                if next.len() >= MAX_ITEMS {
                    dropped += 1;
                    continue;
                }
                let mut c = combo.clone();
                c.push((b.name.clone(), it.clone()));
                next.push(c);
            }
        }
        combos = next;
    }
    (combos, dropped)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(bindings: &[(&str, &[&str])], record: Value, want: &[&str]) {
        let bindings: Vec<Binding> = bindings
            .iter()
            .map(|(n, ps)| Binding {
                name: (*n).to_owned(),
                paths: ps.iter().map(|p| Path::parse(p).unwrap()).collect(),
            })
            .collect();
        let (combos, _) = expand(&bindings, &[("record", &record)]);
        let got: Vec<String> = combos
            .iter()
            .map(|c| {
                c.iter()
                    .map(|(n, v)| format!("{n}={v}"))
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn every_permission_times_every_range() {
        let rec = serde_json::json!({"requestParameters": {"ipPermissions": {"items": [
            {"fromPort": 22, "ipRanges": {"items": [{"cidrIp": "0.0.0.0/0"}, {"cidrIp": "10.0.0.0/8"}]},
             "ipv6Ranges": {"items": [{"cidrIpv6": "::/0"}]}},
            {"fromPort": 443, "ipRanges": {"items": [{"cidrIp": "1.2.3.4/32"}]}}
        ]}}});
        check(
            &[
                ("perm", &["record.requestParameters.ipPermissions.items"]),
                ("range", &["perm.ipRanges.items", "perm.ipv6Ranges.items"]),
            ],
            rec.clone(),
            &[
                r#"perm={"fromPort":22,"ipRanges":{"items":[{"cidrIp":"0.0.0.0/0"},{"cidrIp":"10.0.0.0/8"}]},"ipv6Ranges":{"items":[{"cidrIpv6":"::/0"}]}},range={"cidrIp":"0.0.0.0/0"}"#,
                r#"perm={"fromPort":22,"ipRanges":{"items":[{"cidrIp":"0.0.0.0/0"},{"cidrIp":"10.0.0.0/8"}]},"ipv6Ranges":{"items":[{"cidrIpv6":"::/0"}]}},range={"cidrIp":"10.0.0.0/8"}"#,
                r#"perm={"fromPort":22,"ipRanges":{"items":[{"cidrIp":"0.0.0.0/0"},{"cidrIp":"10.0.0.0/8"}]},"ipv6Ranges":{"items":[{"cidrIpv6":"::/0"}]}},range={"cidrIpv6":"::/0"}"#,
                r#"perm={"fromPort":443,"ipRanges":{"items":[{"cidrIp":"1.2.3.4/32"}]}},range={"cidrIp":"1.2.3.4/32"}"#,
            ],
        );
        // Nested lists flatten along a single path.
        check(
            &[(
                "cidr",
                &["record.requestParameters.ipPermissions.items[*].ipRanges.items[*].cidrIp"],
            )],
            rec.clone(),
            &[
                r#"cidr="0.0.0.0/0""#,
                r#"cidr="10.0.0.0/8""#,
                r#"cidr="1.2.3.4/32""#,
            ],
        );
        // Missing paths give nothing; a single object gives itself.
        check(&[("x", &["record.nope"])], rec, &[]);
        check(
            &[("x", &["record.a"])],
            serde_json::json!({"a": {"b": 1}}),
            &[r#"x={"b":1}"#],
        );
    }

    #[test]
    fn bad_paths() {
        assert!(Path::parse("").is_err());
        assert!(Path::parse("record..a").is_err());
        assert!(Path::parse("record.a[0]").is_err());
    }
}

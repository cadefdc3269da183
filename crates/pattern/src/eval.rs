//! Direct evaluation of one condition against one event value, used to
//! confirm candidate branches after the index has nominated them.

use crate::cidr;
use crate::fold;
use crate::index::Value;
use crate::number::NumKey;
use crate::pattern::{AnythingBut, Cond};

/// An event value with what the scanner already worked out about it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Val<'a> {
    pub(crate) v: Value<'a>,
    /// For numbers: the value when the literal is exactly a double.
    pub(crate) exact: Option<f64>,
}

impl Val<'_> {
    fn num_key_eq(&self, k: &NumKey) -> bool {
        match (k, self.v, self.exact) {
            (NumKey::Exact(bits), Value::Num(_), Some(f)) => *bits == f.to_bits(),
            (NumKey::Literal(l), Value::Num(n), None) => **l == *n,
            _ => false,
        }
    }
}

fn text(s: &[u8]) -> Option<&str> {
    std::str::from_utf8(s).ok()
}

/// Does the value satisfy the condition? (`exists: false` is about absence
/// and never satisfied by a value.)
pub(crate) fn cond_matches(cond: &Cond, val: &Val<'_>) -> bool {
    match (cond, val.v) {
        (Cond::Exists(present), _) => *present,
        (Cond::Str(s, ip), Value::Str(e)) => {
            s.as_bytes() == e || ip.is_some_and(|ip| text(e).and_then(cidr::parse_ip) == Some(ip))
        }
        (Cond::Num(k), Value::Num(_)) => val.num_key_eq(k),
        (Cond::Bool(b), Value::Bool(e)) => *b == e,
        (Cond::Null, Value::Null) => true,
        (Cond::Prefix(p), Value::Str(e)) => e.starts_with(p.as_bytes()),
        (Cond::Suffix(p), Value::Str(e)) => e.ends_with(p.as_bytes()),
        (Cond::PrefixIc(p), Value::Str(e)) => fold::prefix_ic(e, p),
        (Cond::SuffixIc(p), Value::Str(e)) => fold::suffix_ic(e, p),
        (Cond::EqIc(p), Value::Str(e)) => fold::eq_ic(e, p),
        (Cond::Wildcard(w), Value::Str(e)) => w.matches(e),
        (Cond::Numeric(r), Value::Num(_)) => val.exact.is_some_and(|x| r.contains(x)),
        (Cond::Cidr(r), Value::Str(e)) => text(e)
            .and_then(cidr::parse_ip)
            .is_some_and(|ip| r.contains(ip)),
        (Cond::AnythingBut(ab), _) => !excluded(ab, val),
        _ => false,
    }
}

/// Is the (present) value excluded? Only values of the excluded kind can
/// be; `null`, booleans and the other type always pass.
pub(crate) fn excluded(ab: &AnythingBut, val: &Val<'_>) -> bool {
    match (ab, val.v) {
        (AnythingBut::Strs(list), Value::Str(e)) => list.iter().any(|x| x.as_bytes() == e),
        (AnythingBut::Nums(list), Value::Num(_)) => list.iter().any(|k| val.num_key_eq(k)),
        (AnythingBut::Prefixes(list), Value::Str(e)) => {
            list.iter().any(|x| e.starts_with(x.as_bytes()))
        }
        (AnythingBut::Suffixes(list), Value::Str(e)) => {
            list.iter().any(|x| e.ends_with(x.as_bytes()))
        }
        (AnythingBut::Ic(list), Value::Str(e)) => list.iter().any(|x| fold::eq_ic(e, x)),
        (AnythingBut::Wildcards(list), Value::Str(e)) => list.iter().any(|w| w.matches(e)),
        _ => false,
    }
}

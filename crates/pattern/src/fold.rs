//! Case folding for the `equals-ignore-case` family.
//!
//! Ruler folds with its own upper/lower byte sets and so matches `straße`
//! with `STRASSE` and `ς` with `Σ`; upper-casing then lower-casing gives
//! the same answers for those, and is plain ASCII folding on ASCII.

use std::borrow::Cow;

/// The folded form used for case-insensitive comparison.
pub(crate) fn fold(s: &str) -> Cow<'_, str> {
    if s.is_ascii() {
        if s.bytes().any(|c| c.is_ascii_uppercase()) {
            Cow::Owned(s.to_ascii_lowercase())
        } else {
            Cow::Borrowed(s)
        }
    } else {
        Cow::Owned(s.to_uppercase().to_lowercase())
    }
}

/// Folds `s` into `buf` (cleared first) without allocating for ASCII;
/// false when `s` is not UTF-8.
pub(crate) fn fold_into(s: &[u8], buf: &mut Vec<u8>) -> bool {
    buf.clear();
    if s.is_ascii() {
        buf.extend(s.iter().map(u8::to_ascii_lowercase));
        return true;
    }
    match std::str::from_utf8(s) {
        Ok(t) => {
            buf.extend_from_slice(fold(t).as_bytes());
            true
        }
        Err(_) => false,
    }
}

/// Case-insensitive comparisons of an event string against a folded
/// operand; allocation-free for ASCII values. `None` for invalid UTF-8.
fn folded_cmp(e: &[u8], p: &str, f: impl Fn(&[u8], &[u8]) -> bool) -> bool {
    if e.is_ascii() {
        return f(e, p.as_bytes());
    }
    std::str::from_utf8(e).is_ok_and(|t| f(fold(t).as_bytes(), p.as_bytes()))
}

/// `e` equals the folded operand `p`, ignoring case.
pub(crate) fn eq_ic(e: &[u8], p: &str) -> bool {
    folded_cmp(e, p, |e, p| e.len() == p.len() && e.eq_ignore_ascii_case(p))
}

/// `e` starts with the folded operand `p`, ignoring case.
pub(crate) fn prefix_ic(e: &[u8], p: &str) -> bool {
    folded_cmp(e, p, |e, p| {
        e.len() >= p.len() && e[..p.len()].eq_ignore_ascii_case(p)
    })
}

/// `e` ends with the folded operand `p`, ignoring case.
pub(crate) fn suffix_ic(e: &[u8], p: &str) -> bool {
    folded_cmp(e, p, |e, p| {
        e.len() >= p.len() && e[e.len() - p.len()..].eq_ignore_ascii_case(p)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds() {
        for (a, b) in [
            ("EvEnTb", "eventb"),
            ("straße", "STRASSE"),
            ("ς", "Σ"),
            ("σ", "Σ"),
            ("é", "É"),
        ] {
            assert_eq!(fold(a), fold(b), "{a} {b}");
        }
        assert_ne!(fold("a"), fold("b"));
    }

    #[test]
    fn comparisons() {
        assert!(eq_ic(b"EvEnTb", "eventb"));
        assert!(!eq_ic(b"EvEnT", "eventb"));
        assert!(eq_ic("STRASSE".as_bytes(), &fold("straße")));
        assert!(eq_ic("straße".as_bytes(), &fold("STRASSE")));
        assert!(prefix_ic(b"EventBridge", "eventb"));
        assert!(suffix_ic(b"image.PNG", ".png"));
        assert!(!suffix_ic(b"PNG", ".png"));
        assert!(!eq_ic(b"\xff", "x"));
        let mut buf = Vec::new();
        assert!(fold_into(b"AbC", &mut buf));
        assert_eq!(buf, b"abc");
        assert!(!fold_into(&[0xff], &mut buf));
    }
}

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

#[cfg(test)]
mod tests {
    use super::fold;

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
}

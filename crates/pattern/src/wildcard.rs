//! The `wildcard` operator: `*` matches any run of bytes, `\*` and `\\` are
//! literals, and the whole value must match (anchored at both ends).

use std::collections::{HashMap, VecDeque};

/// A parsed wildcard: literal segments between stars. `segs.len()` is the
/// number of stars plus one; the first and last segments are anchored.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Wildcard {
    pub(crate) segs: Vec<Box<[u8]>>,
}

/// Above this many simultaneously live NFA positions a wildcard is "too
/// complex" (calibrated so AWS's rejected `*:*:*:*:*:event-bus/*` fails).
pub(crate) const MAX_COMPLEXITY: usize = 5;
/// Bounds the work of the complexity evaluation itself.
const MAX_SUBSETS: usize = 1 << 15;

pub(crate) const TOO_COMPLEX: &str = "Rule is too complex - try using fewer wildcard characters or fewer repeating character sequences after a wildcard character";

impl Wildcard {
    /// Parses the operand; positions in errors count the quote Ruler
    /// prepends, hence `+ 1`.
    pub(crate) fn parse(text: &str) -> Result<Wildcard, String> {
        let b = text.as_bytes();
        let mut segs = Vec::new();
        let mut cur = Vec::new();
        let mut i = 0;
        while i < b.len() {
            match b[i] {
                b'*' => {
                    if b.get(i + 1) == Some(&b'*') {
                        return Err(format!("Consecutive wildcard characters at pos {}", i + 1));
                    }
                    segs.push(std::mem::take(&mut cur).into_boxed_slice());
                }
                b'\\' => match b.get(i + 1) {
                    Some(&c @ (b'*' | b'\\')) => {
                        cur.push(c);
                        i += 1;
                    }
                    _ => return Err(format!("Invalid escape character at pos {}", i + 1)),
                },
                c => cur.push(c),
            }
            i += 1;
        }
        segs.push(cur.into_boxed_slice());
        Ok(Wildcard { segs })
    }

    /// Anchored match; greedy leftmost search of the middle segments is
    /// exact for `*`-only globs and linear-ish in practice.
    pub(crate) fn matches(&self, v: &[u8]) -> bool {
        let first = &self.segs[0];
        if self.segs.len() == 1 {
            return v == &first[..];
        }
        v.starts_with(first) && self.matches_after_head(v)
    }

    /// [`Wildcard::matches`] for a value already known to start with the
    /// literal head (the index found it by that head).
    pub(crate) fn matches_after_head(&self, v: &[u8]) -> bool {
        let n = self.segs.len();
        let first = &self.segs[0];
        if n == 1 {
            return v.len() == first.len();
        }
        let last = &self.segs[n - 1];
        if v.len() < first.len() + last.len() || !v.ends_with(last) {
            return false;
        }
        let mut rest = &v[first.len()..v.len() - last.len()];
        for seg in &self.segs[1..n - 1] {
            match find(rest, seg) {
                Some(at) => rest = &rest[at + seg.len()..],
                None => return false,
            }
        }
        true
    }

    /// The literal text before the first star.
    pub(crate) fn literal_prefix(&self) -> &[u8] {
        &self.segs[0]
    }

    /// The literal text after the last star (the whole operand when there
    /// is no star: check [`Wildcard::has_star`] first).
    pub(crate) fn literal_suffix(&self) -> &[u8] {
        &self.segs[self.segs.len() - 1]
    }

    pub(crate) fn has_star(&self) -> bool {
        self.segs.len() > 1
    }

    /// Is the wildcard over the complexity limit?
    pub(crate) fn too_complex(&self) -> bool {
        // Every star can be live at once (feed each segment in turn), so
        // counting stars settles most cases without the search.
        self.segs.len() - 1 > MAX_COMPLEXITY || self.complexity().is_none_or(|c| c > MAX_COMPLEXITY)
    }

    /// The largest number of NFA states any input keeps live at once, in
    /// the spirit of Ruler's `MachineComplexityEvaluator`. `None` when the
    /// evaluation would be too large, or as soon as the count passes
    /// [`MAX_COMPLEXITY`] (the exact figure beyond it does not matter).
    pub(crate) fn complexity(&self) -> Option<usize> {
        // Token list: Some(byte) or None for a star.
        let mut toks: Vec<Option<u8>> = Vec::new();
        for (i, seg) in self.segs.iter().enumerate() {
            if i > 0 {
                toks.push(None);
            }
            toks.extend(seg.iter().map(|&c| Some(c)));
        }
        let mut alphabet: Vec<u8> = toks.iter().flatten().copied().collect();
        alphabet.sort_unstable();
        alphabet.dedup();
        // One byte standing for "anything not in the pattern".
        if let Some(other) = (0..=255u8).find(|c| alphabet.binary_search(c).is_err()) {
            alphabet.push(other);
        }
        let close = |set: &mut Vec<usize>| {
            let mut i = 0;
            while i < set.len() {
                let p = set[i];
                if p < toks.len() && toks[p].is_none() && !set.contains(&(p + 1)) {
                    set.push(p + 1);
                }
                i += 1;
            }
            set.sort_unstable();
        };
        // Live states, counted like Ruler's transitions: a star and the byte
        // right after it are one state, and reaching the end is not a state.
        let live = |set: &[usize]| {
            set.iter()
                .filter(|&&p| {
                    p < toks.len() && !(p > 0 && toks[p - 1].is_none() && set.contains(&(p - 1)))
                })
                .count()
        };
        let mut start = vec![0];
        close(&mut start);
        let mut seen: HashMap<Vec<usize>, ()> = HashMap::new();
        let mut queue = VecDeque::new();
        let mut worst = live(&start);
        seen.insert(start.clone(), ());
        queue.push_back(start);
        while let Some(set) = queue.pop_front() {
            for &c in &alphabet {
                let mut next = Vec::new();
                for &p in &set {
                    match toks.get(p) {
                        Some(None) => next.push(p),
                        Some(Some(b)) if *b == c => next.push(p + 1),
                        _ => {}
                    }
                }
                next.sort_unstable();
                next.dedup();
                close(&mut next);
                if next.is_empty() || seen.contains_key(&next) {
                    continue;
                }
                worst = worst.max(live(&next));
                if worst > MAX_COMPLEXITY || seen.len() >= MAX_SUBSETS {
                    return None;
                }
                seen.insert(next.clone(), ());
                queue.push_back(next);
            }
        }
        Some(worst)
    }
}

/// Naive substring search; wildcard segments are short.
pub(crate) fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    let first = needle[0];
    let mut i = 0;
    while i + needle.len() <= hay.len() {
        match hay[i..=hay.len() - needle.len()]
            .iter()
            .position(|&c| c == first)
        {
            None => return None,
            Some(off) => {
                i += off;
                if hay[i..].starts_with(needle) {
                    return Some(i);
                }
                i += 1;
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(pat: &str, value: &str, expect: bool) {
        let w = Wildcard::parse(pat).unwrap();
        assert_eq!(w.matches(value.as_bytes()), expect, "{pat} ~ {value}");
    }

    #[test]
    fn matching() {
        check("", "", true);
        check("", "a", false);
        check("*", "", true);
        check("a*b", "ab", true);
        check("a*b", "aXXb", true);
        check("a*b", "aXXbc", false);
        check("*a*a*", "aa", true);
        check("*a*a*", "a", false);
        check("ab*ba", "aba", false);
        check(r"a\*b", "a*b", true);
        check(r"a\*b", "aXb", false);
        check(r"a\\*", r"a\zz", true);
        check(
            "arn:aws:events:us-east-1:*:event-bus/*",
            "arn:aws:events:us-east-1:123:event-bus/x",
            true,
        );
    }

    #[test]
    fn errors() {
        assert_eq!(
            Wildcard::parse("abc**def").unwrap_err(),
            "Consecutive wildcard characters at pos 4"
        );
        assert_eq!(
            Wildcard::parse(r"a\bc").unwrap_err(),
            "Invalid escape character at pos 2"
        );
        assert_eq!(
            Wildcard::parse("abc\\").unwrap_err(),
            "Invalid escape character at pos 4"
        );
    }

    #[test]
    fn complexity_is_quick_on_long_operands() {
        let long = format!("*{}*{}*", "a".repeat(2000), "ab".repeat(1000));
        assert!(Wildcard::parse(&long).unwrap().too_complex());
        let long = format!("{}*", "abc".repeat(1000));
        assert!(!Wildcard::parse(&long).unwrap().too_complex());
        // A repeating sequence after a star keeps many alignments live.
        let long = format!("x*{}", "abc".repeat(10));
        assert!(Wildcard::parse(&long).unwrap().too_complex());
    }

    #[test]
    fn complexity() {
        let c = |p: &str| Wildcard::parse(p).unwrap().complexity();
        assert!(c("*:*:*:*:*:event-bus/*").is_none_or(|n| n > MAX_COMPLEXITY));
        assert!(c("*a*b*c*d*e*").is_none_or(|n| n > MAX_COMPLEXITY));
        assert!(c("*aaaaa*").is_none_or(|n| n > MAX_COMPLEXITY));
        for ok in [
            "arn:aws:events:us-east-1:*:event-bus/*",
            "*/init/*",
            "a*b*c",
            "*",
            "",
            "arn:aws:iam::*:role/*",
            "*bbb*",
            "*次期*",
            "https://www.example.*/*9943",
            "*aaaa*",
            "*a*b*c*d*",
        ] {
            assert!(
                c(ok).is_some_and(|n| n <= MAX_COMPLEXITY),
                "{ok}: {:?}",
                c(ok)
            );
        }
    }
}

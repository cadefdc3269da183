//! Wildcard patterns for ARNs and user agents: `*` matches any run of characters
//! (including none and including `/` and `:`), `?` exactly one character. Case-sensitive.

/// A compiled wildcard pattern.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Glob {
    text: String,
}

impl Glob {
    /// Compiles a pattern. Every string is a valid pattern.
    pub fn new(text: &str) -> Glob {
        Glob {
            text: text.to_owned(),
        }
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether `s` matches the whole pattern.
    pub fn matches(&self, s: &str) -> bool {
        wildcard_match(self.text.as_bytes(), s.as_bytes())
    }
}

/// Iterative wildcard matching with single backtracking point (linear in practice).
fn wildcard_match(p: &[u8], s: &[u8]) -> bool {
    let (mut pi, mut si) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() && (p[pi] == b'?' || p[pi] == s[si]) {
            pi += 1;
            si += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, si));
            pi += 1;
        } else if let Some((sp, ss)) = star {
            pi = sp + 1;
            si = ss + 1;
            star = Some((sp, ss + 1));
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == b'*' {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(p: &str, s: &str, want: bool) {
        assert_eq!(Glob::new(p).matches(s), want, "{p} ~ {s}");
    }

    #[test]
    fn wildcards() {
        check(
            "arn:aws:iam::*:role/terraform-*",
            "arn:aws:iam::123:role/terraform-ci",
            true,
        );
        check(
            "arn:aws:iam::*:role/terraform-*",
            "arn:aws:iam::123:role/admin",
            false,
        );
        check("*Terraform*", "APN/1.0 HashiCorp/1.0 Terraform/1.5.7", true);
        check("a?c", "abc", true);
        check("a?c", "ac", false);
        check("*", "", true);
        check("", "x", false);
        check("a*b*c", "axxbyyc", true);
        check("a*b*c", "axxbyy", false);
    }
}

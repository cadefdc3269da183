//! Number literals: canonical keys for equality, f64 values for ranges.
//!
//! Ruler compares numbers by value when the literal survives a round trip
//! through a double, and by literal text otherwise (an AWS account number
//! such as `123456789012345678901` is not a double). We do the same: a
//! literal whose decimal value equals the shortest decimal form of its
//! nearest double is "canonical"; others only ever equal the same text.

use std::fmt::Write;

/// The equality key of a number literal.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum NumKey {
    /// Bits of the exactly representable value (with -0 folded into 0).
    Exact(u64),
    /// The literal as written: not exactly representable as a double.
    Literal(Box<str>),
}

/// Parses a JSON number literal to its double if the literal is exactly
/// that double's value (in Ruler's sense, see module docs). Allocation-free:
/// it runs for every number the matcher reads.
pub(crate) fn exact_f64(lit: &str) -> Option<f64> {
    let f: f64 = lit.parse().ok()?;
    if !f.is_finite() {
        return None;
    }
    let mut shortest = StackBuf::default();
    write!(shortest, "{f:e}").ok()?;
    let (mut a, mut b) = ([0u8; MAX_DIGITS], [0u8; MAX_DIGITS]);
    let x = decimal(lit, &mut a)?;
    let y = decimal(shortest.as_str(), &mut b)?;
    (x.0 == y.0 && x.2 == y.2 && a[..x.1] == b[..y.1]).then_some(f + 0.0)
}

/// The equality key of a (syntactically valid) number literal.
pub(crate) fn key(lit: &str) -> NumKey {
    match exact_f64(lit) {
        Some(f) => NumKey::Exact(f.to_bits()),
        None => NumKey::Literal(lit.into()),
    }
}

/// A double's shortest form has at most 17 significant digits.
const MAX_DIGITS: usize = 24;

struct StackBuf {
    buf: [u8; 48],
    len: usize,
}

impl Default for StackBuf {
    fn default() -> Self {
        StackBuf {
            buf: [0; 48],
            len: 0,
        }
    }
}

impl StackBuf {
    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }
}

impl Write for StackBuf {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        self.buf
            .get_mut(self.len..end)
            .ok_or(std::fmt::Error)?
            .copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// Normalises a decimal literal into `digits` (significant digits, no
/// leading or trailing zeros) and returns (negative, digit count, power of
/// ten of the last digit). Zero is `(false, 0, 0)`. `None` when there are
/// too many significant digits for a double or the exponent overflows.
fn decimal(lit: &str, digits: &mut [u8; MAX_DIGITS]) -> Option<(bool, usize, i64)> {
    let (neg, rest) = match lit.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, lit),
    };
    let (mantissa, exp_text) = match rest.find(['e', 'E']) {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, "0"),
    };
    let (mut n, mut zeros, mut frac_len, mut in_frac) = (0usize, 0usize, 0i64, false);
    for c in mantissa.bytes() {
        if c == b'.' {
            in_frac = true;
            continue;
        }
        if in_frac {
            frac_len += 1;
        }
        if c == b'0' {
            // Zeros count only between significant digits or at the end.
            if n > 0 {
                zeros += 1;
            }
            continue;
        }
        if n + zeros + 1 > MAX_DIGITS {
            return None;
        }
        digits[n..n + zeros].fill(b'0');
        n += zeros;
        zeros = 0;
        digits[n] = c;
        n += 1;
    }
    if n == 0 {
        return Some((false, 0, 0));
    }
    let exp = exp_text
        .parse::<i64>()
        .ok()?
        .checked_sub(frac_len)?
        .checked_add(i64::try_from(zeros).ok()?)?;
    Some((neg, n, exp))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(a: &str, b: &str, equal: bool) {
        assert_eq!(key(a) == key(b), equal, "{a} vs {b}");
    }

    #[test]
    fn equality_across_forms() {
        check("300", "300.0", true);
        check("300", "3.0e2", true);
        check("3", "300e-2", true);
        check("0", "-0.0", true);
        check("0.1", "1e-1", true);
        check("35", "3.5E1", true);
        check("1", "2", false);
        // More digits than a double holds: literal comparison only.
        check("37.807807921694092", "37.80780792169409", false);
        check("37.807807921694092", "37.807807921694092", true);
        check("123456789012345678901", "123456789012345678901", true);
        check("123456789012345678901", "123456789012345680000", false);
        check("1e400", "1e400", true);
        check("1e400", "2e400", false);
    }

    #[test]
    fn exact_values() {
        assert_eq!(exact_f64("-5e9"), Some(-5e9));
        assert_eq!(exact_f64("1.7976931348623157e308"), Some(f64::MAX));
        assert_eq!(exact_f64("1e400"), None);
        assert_eq!(exact_f64("0e99999999999999999999"), Some(0.0));
        assert_eq!(exact_f64("1e-99999999999999999999"), None);
        assert_eq!(exact_f64("100000000000000000000000000000"), Some(1e29));
        assert_eq!(exact_f64("0.000001"), Some(1e-6));
        assert_eq!(exact_f64("12345678901234567890123"), None);
    }
}

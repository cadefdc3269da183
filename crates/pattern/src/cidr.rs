//! IP addresses and CIDR blocks, compiled to integer ranges as Ruler does,
//! so non-canonical event forms (`2001:0db8::0001`, `010.0.0.1`) still match.

/// An inclusive range of addresses of one family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum IpRange {
    V4(u32, u32),
    V6(u128, u128),
}

/// A parsed address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ip {
    V4(u32),
    V6(u128),
}

impl IpRange {
    pub(crate) fn contains(self, ip: Ip) -> bool {
        match (self, ip) {
            (IpRange::V4(lo, hi), Ip::V4(a)) => lo <= a && a <= hi,
            (IpRange::V6(lo, hi), Ip::V6(a)) => lo <= a && a <= hi,
            _ => false,
        }
    }

    /// The single-address range of `ip`.
    pub(crate) fn single(ip: Ip) -> IpRange {
        match ip {
            Ip::V4(a) => IpRange::V4(a, a),
            Ip::V6(a) => IpRange::V6(a, a),
        }
    }
}

/// Parses a CIDR block such as `10.0.0.0/24`; errors use Ruler's wording.
pub(crate) fn parse_cidr(text: &str) -> Result<IpRange, String> {
    let mut parts = text.split('/');
    let (Some(addr), Some(bits), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err("Malformed CIDR, one '/' required".into());
    };
    let ip = parse_ip(addr).ok_or_else(|| format!("Nonstandard IP address: {addr}"))?;
    let bits: u32 = match bits.parse() {
        Ok(b) if !bits.starts_with('+') => b,
        _ => return Err("Malformed CIDR, mask bits must be an integer".into()),
    };
    match ip {
        Ip::V4(a) => {
            if bits > 32 {
                return Err(format!(
                    "Malformed CIDR, mask bits must be between 0 and 32: {bits}"
                ));
            }
            let host = u32::MAX.checked_shr(bits).unwrap_or(0);
            Ok(IpRange::V4(a & !host, a | host))
        }
        Ip::V6(a) => {
            if bits > 128 {
                return Err(format!(
                    "Malformed CIDR, mask bits must be between 0 and 128: {bits}"
                ));
            }
            let host = u128::MAX.checked_shr(bits).unwrap_or(0);
            Ok(IpRange::V6(a & !host, a | host))
        }
    }
}

/// Parses an IPv4 or IPv6 address; leading zeros are accepted (as decimal).
pub(crate) fn parse_ip(s: &str) -> Option<Ip> {
    if s.contains(':') {
        parse_v6(s).map(Ip::V6)
    } else {
        parse_v4(s).map(Ip::V4)
    }
}

fn parse_v4(s: &str) -> Option<u32> {
    let mut out = 0u32;
    let mut n = 0;
    for part in s.split('.') {
        if part.is_empty() || part.len() > 3 || !part.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        let v: u32 = part.parse().ok()?;
        if v > 255 {
            return None;
        }
        out = (out << 8) | v;
        n += 1;
    }
    (n == 4).then_some(out)
}

/// Parses IPv6 without allocating: it runs for event values.
fn parse_v6(s: &str) -> Option<u128> {
    // Split around "::" (at most one), then parse each side's groups.
    let (head, tail, compressed) = match s.find("::") {
        Some(i) => (&s[..i], &s[i + 2..], true),
        None => (s, "", false),
    };
    let mut h = [0u16; 8];
    let mut t = [0u16; 8];
    let nh = groups(head, !compressed, &mut h)?;
    let nt = if compressed {
        groups(tail, true, &mut t)?
    } else {
        0
    };
    if (compressed && nh + nt > 7) || (!compressed && nh != 8) {
        return None;
    }
    let mut all = [0u16; 8];
    all[..nh].copy_from_slice(&h[..nh]);
    all[8 - nt..].copy_from_slice(&t[..nt]);
    Some(
        all.iter()
            .fold(0u128, |acc, &g| (acc << 16) | u128::from(g)),
    )
}

/// Parses colon-separated hex groups (the last may be dotted IPv4 when
/// `allow_v4`) into `out`; returns how many groups were written.
fn groups(part: &str, allow_v4: bool, out: &mut [u16; 8]) -> Option<usize> {
    if part.is_empty() {
        return Some(0);
    }
    let mut n = 0;
    let mut pieces = part.split(':').peekable();
    while let Some(p) = pieces.next() {
        if allow_v4 && pieces.peek().is_none() && p.contains('.') {
            let v4 = parse_v4(p)?;
            *out.get_mut(n)? = (v4 >> 16) as u16;
            *out.get_mut(n + 1)? = v4 as u16;
            n += 2;
        } else {
            if p.is_empty() || p.len() > 4 {
                return None;
            }
            *out.get_mut(n)? = u16::from_str_radix(p, 16).ok()?;
            n += 1;
        }
    }
    Some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(cidr: &str, ip: &str, inside: bool) {
        let r = parse_cidr(cidr).unwrap();
        let ip = parse_ip(ip).unwrap();
        assert_eq!(r.contains(ip), inside, "{cidr} {ip:?}");
    }

    #[test]
    fn ranges() {
        check("10.0.0.0/24", "10.0.0.255", true);
        check("10.0.0.0/24", "10.0.1.0", false);
        check("10.0.0.0/8", "010.0.0.1", true);
        check("0.0.0.0/0", "255.255.255.255", true);
        check(
            "2001:db8:1234:1a00::/64",
            "2001:0db8:1234:1a00:0000:0000:0000:0001",
            true,
        );
        check("2001:db8:1234:1a00::/64", "2001:db8:1234:1a01::1", false);
        check("::/0", "::", true);
        check("::ffff:0:0/96", "::ffff:1.2.3.4", true);
        check("10.0.0.0/24", "::1", false);
    }

    #[test]
    fn rejects() {
        for (text, msg) in [
            ("10.0.0.0", "Malformed CIDR, one '/' required"),
            ("10.0.0.0/8/8", "Malformed CIDR, one '/' required"),
            ("10.0.0.256/8", "Nonstandard IP address: 10.0.0.256"),
            ("10.0.0.0/x", "Malformed CIDR, mask bits must be an integer"),
            (
                "10.0.0.0/33",
                "Malformed CIDR, mask bits must be between 0 and 32: 33",
            ),
            (
                "1:2:3:4:5:6:7:8:9/64",
                "Nonstandard IP address: 1:2:3:4:5:6:7:8:9",
            ),
            ("1::2::3/64", "Nonstandard IP address: 1::2::3"),
        ] {
            assert_eq!(parse_cidr(text).unwrap_err(), msg, "{text}");
        }
        for bad in [
            "1.2.3",
            "1.2.3.4.5",
            "1..2.3",
            ":1:2:3:4:5:6:7",
            "12345::",
            "1:2:3:4:5:6:7:8:",
        ] {
            assert_eq!(parse_ip(bad), None, "{bad}");
        }
    }
}

//! CIDR blocks (IPv4 and IPv6) and membership tests, without extra dependencies.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// A network in CIDR notation, e.g. `10.0.0.0/8` or `2001:db8::/32`. A bare address is a
/// host network (`/32` or `/128`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

/// Why a CIDR did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid CIDR {text:?}: {reason}")]
pub struct CidrError {
    /// The text as given.
    pub text: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl Cidr {
    /// The network address as given.
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The prefix length.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// Whether this network contains `ip` (an IPv4 address never matches an IPv6 network,
    /// except IPv4-mapped IPv6 addresses, which are compared as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = if self.prefix == 0 {
                    0
                } else {
                    u32::MAX << (32 - u32::from(self.prefix))
                };
                (u32::from(net) & mask) == (u32::from(ip) & mask)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = if self.prefix == 0 {
                    0
                } else {
                    u128::MAX << (128 - u32::from(self.prefix))
                };
                (u128::from(net) & mask) == (u128::from(ip) & mask)
            }
            _ => false,
        }
    }

    /// Whether this network contains every address of `other`.
    pub fn covers(&self, other: &Cidr) -> bool {
        self.prefix <= other.prefix && self.contains(other.addr)
    }

    /// Whether this is the whole address space (`0.0.0.0/0` or `::/0`).
    pub fn is_whole_internet(&self) -> bool {
        self.prefix == 0
    }
}

impl FromStr for Cidr {
    type Err = CidrError;
    fn from_str(s: &str) -> Result<Cidr, CidrError> {
        let err = |reason| CidrError {
            text: s.to_owned(),
            reason,
        };
        let t = s.trim();
        let (addr, prefix) = match t.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (t, None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| err("not an IP address"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p.parse::<u8>().map_err(|_| err("bad prefix length"))?,
            None => max,
        };
        if prefix > max {
            return Err(err("prefix length too large"));
        }
        Ok(Cidr { addr, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// Whether any network in `set` contains `ip` (given as text; text that is not an IP, such
/// as `cloudtrail.amazonaws.com`, is in no set).
pub fn any_contains(set: &[Cidr], ip: &str) -> bool {
    match ip.trim().parse::<IpAddr>() {
        Ok(ip) => set.iter().any(|c| c.contains(ip)),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(cidr: &str, ip: &str, want: bool) {
        let c: Cidr = cidr.parse().unwrap();
        assert_eq!(c.contains(ip.parse().unwrap()), want, "{cidr} ∋ {ip}");
    }

    #[test]
    fn membership() {
        check("10.0.0.0/8", "10.1.2.3", true);
        check("10.0.0.0/8", "11.1.2.3", false);
        check("0.0.0.0/0", "8.8.8.8", true);
        check("::/0", "2001:db8::1", true);
        check("::/0", "8.8.8.8", false);
        check("192.168.1.7", "192.168.1.7", true);
        check("192.168.1.7", "192.168.1.8", false);
        check("2001:db8::/32", "2001:db8:1::1", true);
        check("10.0.0.0/8", "::ffff:10.0.0.1", true);
        assert!("10.0.0.0/33".parse::<Cidr>().is_err());
        assert!("nope".parse::<Cidr>().is_err());
        assert!(!any_contains(
            &["0.0.0.0/0".parse().unwrap()],
            "s3.amazonaws.com"
        ));
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.covers(&"10.0.0.0/8".parse().unwrap()));
        assert!(all.is_whole_internet());
    }
}

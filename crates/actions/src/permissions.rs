//! Security-group ingress permissions, normalised so that what an event added, what a group
//! has and what the config requires compare exactly: one protocol, one port range, and the
//! ranges as sets.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

/// One ingress permission: a protocol, a port range and the IPv4/IPv6 ranges it admits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Permission {
    /// `tcp`, `udp`, `icmp`, `icmpv6` or `-1` (all).
    pub protocol: String,
    /// First port (`-1` for all).
    pub from_port: i64,
    /// Last port (`-1` for all).
    pub to_port: i64,
    /// IPv4 ranges.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ip_ranges: Vec<String>,
    /// IPv6 ranges.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ipv6_ranges: Vec<String>,
}

impl Permission {
    /// One protocol, port range and CIDR (IPv4 or IPv6 by its form).
    pub fn single(
        protocol: &str,
        from_port: i64,
        to_port: i64,
        cidr: &str,
    ) -> Result<Permission, String> {
        let mut p = Permission {
            protocol: normalise_protocol(protocol),
            from_port,
            to_port,
            ip_ranges: Vec::new(),
            ipv6_ranges: Vec::new(),
        };
        if cidr.contains(':') {
            p.ipv6_ranges.push(cidr.to_owned());
        } else {
            p.ip_ranges.push(cidr.to_owned());
        }
        p.validate()?;
        Ok(p.normalised())
    }

    /// Checks the ranges are CIDRs and the ports make sense.
    pub fn validate(&self) -> Result<(), String> {
        for r in self.ip_ranges.iter().chain(&self.ipv6_ranges) {
            let Some((addr, len)) = r.split_once('/') else {
                return Err(format!("{r:?} is not a CIDR range"));
            };
            let max = if addr.contains(':') {
                addr.parse::<std::net::Ipv6Addr>()
                    .map_err(|_| format!("{r:?} is not a CIDR range"))?;
                128
            } else {
                addr.parse::<std::net::Ipv4Addr>()
                    .map_err(|_| format!("{r:?} is not a CIDR range"))?;
                32
            };
            match len.parse::<u8>() {
                Ok(n) if n <= max => {}
                _ => return Err(format!("{r:?} has a bad prefix length")),
            }
        }
        if self.ip_ranges.is_empty() && self.ipv6_ranges.is_empty() {
            return Err("a permission needs at least one range".into());
        }
        let all = self.protocol == "-1";
        if !all && (self.from_port < -1 || self.to_port > 65535 || self.from_port > self.to_port) {
            return Err(format!(
                "bad port range {}-{}",
                self.from_port, self.to_port
            ));
        }
        Ok(())
    }

    /// Sorted, deduplicated ranges and a canonical protocol; all-protocol ports are -1.
    pub fn normalised(mut self) -> Permission {
        self.protocol = normalise_protocol(&self.protocol);
        if self.protocol == "-1" {
            self.from_port = -1;
            self.to_port = -1;
        }
        self.ip_ranges.sort();
        self.ip_ranges.dedup();
        self.ipv6_ranges.sort();
        self.ipv6_ranges.dedup();
        self
    }

    fn atoms(&self) -> impl Iterator<Item = Atom> + '_ {
        let p = self.clone().normalised();
        let (proto, from, to) = (p.protocol.clone(), p.from_port, p.to_port);
        p.ip_ranges
            .into_iter()
            .map(|r| (r, false))
            .chain(p.ipv6_ranges.into_iter().map(|r| (r, true)))
            .map(move |(range, v6)| Atom {
                key: (proto.clone(), from, to, canonical_cidr(&range), v6),
                range,
            })
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ranges: Vec<&str> = self
            .ip_ranges
            .iter()
            .chain(&self.ipv6_ranges)
            .map(String::as_str)
            .collect();
        if self.protocol == "-1" {
            write!(f, "all traffic from {}", ranges.join(", "))
        } else {
            write!(
                f,
                "{} {}-{} from {}",
                self.protocol,
                self.from_port,
                self.to_port,
                ranges.join(", ")
            )
        }
    }
}

/// CloudTrail and the APIs spell protocols as names or numbers.
pub fn normalise_protocol(p: &str) -> String {
    match p.trim().to_ascii_lowercase().as_str() {
        "6" => "tcp".into(),
        "17" => "udp".into(),
        "1" => "icmp".into(),
        "58" => "icmpv6".into(),
        "all" | "-1" | "" => "-1".into(),
        other => other.into(),
    }
}

/// One (protocol, ports, range): the unit that is granted or revoked. Atoms compare by
/// their canonical network (`208.236.235.254/0` is `0.0.0.0/0`), and keep the spelling
/// they came with, so a revoke names a range exactly as the group stores it.
#[derive(Debug, Clone)]
struct Atom {
    key: (String, i64, i64, String, bool),
    range: String,
}

impl Atom {
    fn protocol(&self) -> &str {
        &self.key.0
    }
    fn ports(&self) -> (i64, i64) {
        (self.key.1, self.key.2)
    }
    fn v6(&self) -> bool {
        self.key.4
    }
}

/// The network of a CIDR with its host bits cleared (the text itself when it is not one).
pub fn canonical_cidr(cidr: &str) -> String {
    let Some((addr, len)) = cidr.trim().split_once('/') else {
        return cidr.to_owned();
    };
    let Ok(len) = len.parse::<u32>() else {
        return cidr.to_owned();
    };
    if let Ok(v4) = addr.parse::<std::net::Ipv4Addr>()
        && len <= 32
    {
        let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
        return format!("{}/{len}", std::net::Ipv4Addr::from(u32::from(v4) & mask));
    }
    if let Ok(v6) = addr.parse::<std::net::Ipv6Addr>()
        && len <= 128
    {
        let mask = if len == 0 {
            0
        } else {
            u128::MAX << (128 - len)
        };
        return format!("{}/{len}", std::net::Ipv6Addr::from(u128::from(v6) & mask));
    }
    cidr.to_owned()
}

type AtomKey = (String, i64, i64, String, bool);

fn atoms_of(perms: &[Permission]) -> Vec<Atom> {
    perms.iter().flat_map(Permission::atoms).collect()
}

fn keys(atoms: &[Atom]) -> BTreeSet<AtomKey> {
    atoms.iter().map(|a| a.key.clone()).collect()
}

/// Atoms of `from` whose key is (or, with `keep_present` false, is not) in `other`,
/// each key once.
fn select(from: &[Atom], other: &BTreeSet<AtomKey>, keep_present: bool) -> Vec<Atom> {
    let mut seen = BTreeSet::new();
    let mut out: Vec<Atom> = from
        .iter()
        .filter(|a| other.contains(&a.key) == keep_present && seen.insert(a.key.clone()))
        .cloned()
        .collect();
    out.sort_by(|a, b| a.key.cmp(&b.key));
    out
}

/// What to authorize and what to revoke to bring `current` to exactly `required`.
/// Returns (to authorize, to revoke), grouped back into one permission per protocol and
/// port range.
pub fn diff(current: &[Permission], required: &[Permission]) -> (Vec<Permission>, Vec<Permission>) {
    let (have, want) = (atoms_of(current), atoms_of(required));
    (
        group(&select(&want, &keys(&have), false)),
        group(&select(&have, &keys(&want), false)),
    )
}

/// The part of `wanted` that `current` has (what a revoke of `wanted` would remove), in
/// the group's own spelling.
pub fn intersect(current: &[Permission], wanted: &[Permission]) -> Vec<Permission> {
    let (have, want) = (atoms_of(current), atoms_of(wanted));
    group(&select(&have, &keys(&want), true))
}

fn group(atoms: &[Atom]) -> Vec<Permission> {
    let mut out: Vec<Permission> = Vec::new();
    for a in atoms {
        let (from_port, to_port) = a.ports();
        let found = out.iter_mut().find(|p| {
            p.protocol == a.protocol() && p.from_port == from_port && p.to_port == to_port
        });
        let p = match found {
            Some(p) => p,
            None => {
                out.push(Permission {
                    protocol: a.protocol().to_owned(),
                    from_port,
                    to_port,
                    ip_ranges: Vec::new(),
                    ipv6_ranges: Vec::new(),
                });
                out.last_mut().expect("just pushed")
            }
        };
        if a.v6() {
            p.ipv6_ranges.push(a.range.clone());
        } else {
            p.ip_ranges.push(a.range.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn perm(proto: &str, from: i64, to: i64, v4: &[&str]) -> Permission {
        Permission {
            protocol: proto.into(),
            from_port: from,
            to_port: to,
            ip_ranges: v4.iter().map(|s| s.to_string()).collect(),
            ipv6_ranges: Vec::new(),
        }
    }

    #[test]
    fn diff_authorizes_the_missing_and_revokes_the_extra() {
        let current = [
            perm("tcp", 22, 22, &["0.0.0.0/0", "10.0.0.0/8"]),
            perm("tcp", 443, 443, &["0.0.0.0/0"]),
        ];
        let required = [
            perm("tcp", 443, 443, &["0.0.0.0/0"]),
            perm("tcp", 22, 22, &["10.0.0.0/8"]),
            perm("tcp", 5432, 5432, &["10.1.0.0/16"]),
        ];
        let (add, revoke) = diff(&current, &required);
        assert_eq!(add, [perm("tcp", 5432, 5432, &["10.1.0.0/16"])]);
        assert_eq!(revoke, [perm("tcp", 22, 22, &["0.0.0.0/0"])]);
        let (add, revoke) = diff(&required, &required);
        assert!(add.is_empty() && revoke.is_empty());
        let present = intersect(
            &current,
            &[perm("tcp", 22, 22, &["0.0.0.0/0", "192.0.2.0/24"])],
        );
        assert_eq!(present, [perm("tcp", 22, 22, &["0.0.0.0/0"])]);
    }

    #[test]
    fn ranges_compare_by_network_and_keep_the_groups_spelling() {
        assert_eq!(canonical_cidr("208.236.235.254/0"), "0.0.0.0/0");
        assert_eq!(canonical_cidr("10.1.2.3/8"), "10.0.0.0/8");
        assert_eq!(canonical_cidr("2001:db8::1/32"), "2001:db8::/32");
        assert_eq!(canonical_cidr("1.2.3.4/32"), "1.2.3.4/32");
        assert_eq!(canonical_cidr("bogus"), "bogus");
        // The event said 208.236.235.254/0; the group may store either spelling.
        let wanted = [perm("tcp", 22, 22, &["208.236.235.254/0"])];
        for stored in ["208.236.235.254/0", "0.0.0.0/0"] {
            let present = intersect(&[perm("tcp", 22, 22, &[stored, "10.0.0.0/8"])], &wanted);
            assert_eq!(present, [perm("tcp", 22, 22, &[stored])]);
        }
        let (add, revoke) = diff(
            &[perm("tcp", 22, 22, &["10.9.9.9/8"])],
            &[perm("tcp", 22, 22, &["10.0.0.0/8"])],
        );
        assert!(add.is_empty() && revoke.is_empty(), "{add:?} {revoke:?}");
    }

    #[test]
    fn protocols_compare_by_meaning() {
        let (add, revoke) = diff(
            &[perm("6", 22, 22, &["1.2.3.4/32"])],
            &[perm("tcp", 22, 22, &["1.2.3.4/32"])],
        );
        assert!(add.is_empty() && revoke.is_empty());
        let all = perm("all", 0, 65535, &["0.0.0.0/0"]).normalised();
        assert_eq!(
            (all.protocol.as_str(), all.from_port, all.to_port),
            ("-1", -1, -1)
        );
    }

    #[test]
    fn validation() {
        assert!(perm("tcp", 22, 22, &["0.0.0.0/33"]).validate().is_err());
        assert!(perm("tcp", 23, 22, &["0.0.0.0/0"]).validate().is_err());
        assert!(perm("tcp", 22, 22, &[]).validate().is_err());
        assert!(perm("-1", -1, -1, &["0.0.0.0/0"]).validate().is_ok());
        assert!(
            Permission::single("tcp", 22, 22, "::/0")
                .unwrap()
                .ipv6_ranges
                == ["::/0"]
        );
    }
}

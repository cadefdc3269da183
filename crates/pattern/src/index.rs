//! The per-field value index: given one event value, find every condition
//! (branch, slot) it satisfies without looping over patterns. Exact values
//! are hash lookups; prefixes and suffixes are one hash lookup per distinct
//! operand length; wildcards are bucketed by their literal head or tail.
//! Only the inherently "most values match" operators (anything-but,
//! numeric, cidr, exists) are scanned, and they are output-sensitive.

use crate::cidr::IpRange;
use crate::eval::{self, Val};
use crate::fold::fold_into;
use crate::hash::FxMap;
use crate::number::NumKey;
use crate::pattern::Cond;
use crate::wildcard::Wildcard;

/// A condition slot: branch id and field slot within the branch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ref {
    pub(crate) branch: u32,
    pub(crate) slot: u32,
}

/// One event value, borrowed from the event or the scratch buffer.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Value<'a> {
    Str(&'a [u8]),
    Num(&'a str),
    Bool(bool),
    Null,
}

/// Operand → refs, plus the distinct operand lengths (with counts) so a
/// value is probed once per length.
#[derive(Debug, Clone)]
struct Affix<T> {
    map: FxMap<Box<[u8]>, Vec<T>>,
    lens: Vec<(usize, u32)>,
}

impl<T> Default for Affix<T> {
    fn default() -> Self {
        Affix {
            map: FxMap::default(),
            lens: Vec::new(),
        }
    }
}

impl<T: PartialEq> Affix<T> {
    fn insert(&mut self, key: &[u8], t: T) {
        self.map.entry(key.into()).or_default().push(t);
        match self.lens.binary_search_by_key(&key.len(), |&(l, _)| l) {
            Ok(i) => self.lens[i].1 += 1,
            Err(i) => self.lens.insert(i, (key.len(), 1)),
        }
    }

    fn remove(&mut self, key: &[u8], pred: impl Fn(&T) -> bool) {
        let Some(list) = self.map.get_mut(key) else {
            return;
        };
        let before = list.len();
        list.retain(|t| !pred(t));
        let removed = before - list.len();
        if list.is_empty() {
            self.map.remove(key);
        }
        if let Ok(i) = self.lens.binary_search_by_key(&key.len(), |&(l, _)| l) {
            let n = &mut self.lens[i].1;
            *n = n.saturating_sub(u32::try_from(removed).unwrap_or(u32::MAX));
            if *n == 0 {
                self.lens.remove(i);
            }
        }
    }

    /// Calls `f` for entries whose key is a prefix (or, with `suffix`, a
    /// suffix) of `v`.
    #[inline]
    fn probe(&self, v: &[u8], suffix: bool, mut f: impl FnMut(&T)) {
        for &(len, _) in &self.lens {
            if len > v.len() {
                break;
            }
            let part = if suffix {
                &v[v.len() - len..]
            } else {
                &v[..len]
            };
            if let Some(list) = self.map.get(part) {
                list.iter().for_each(&mut f);
            }
        }
    }

    fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

/// Everything indexed for one field.
#[derive(Debug, Default, Clone)]
pub(crate) struct FieldIndex {
    exact: FxMap<Box<[u8]>, Vec<Ref>>,
    /// Numbers exactly representable as doubles, by bits.
    nums: FxMap<u64, Vec<Ref>>,
    /// Other number literals, by text.
    num_literals: FxMap<Box<[u8]>, Vec<Ref>>,
    trues: Vec<Ref>,
    falses: Vec<Ref>,
    nulls: Vec<Ref>,
    prefix: Affix<Ref>,
    suffix: Affix<Ref>,
    prefix_ic: Affix<Ref>,
    suffix_ic: Affix<Ref>,
    eq_ic: FxMap<Box<[u8]>, Vec<Ref>>,
    /// Wildcards bucketed by literal head, by literal tail (head empty),
    /// or neither.
    wild_head: Affix<(Wildcard, Ref)>,
    wild_tail: Affix<(Wildcard, Ref)>,
    wild_rest: Vec<(Wildcard, Ref)>,
    /// Conditions checked one by one (anything-but, numeric, cidr, and
    /// IP spellings of exact strings).
    scan: Vec<(Cond, Ref)>,
    exists: Vec<Ref>,
}

fn remove_ref(map: &mut FxMap<Box<[u8]>, Vec<Ref>>, key: &[u8], r: Ref) {
    if let Some(list) = map.get_mut(key) {
        list.retain(|x| *x != r);
        if list.is_empty() {
            map.remove(key);
        }
    }
}

impl FieldIndex {
    pub(crate) fn insert(&mut self, cond: &Cond, r: Ref) {
        match cond {
            Cond::Str(s, ip) => {
                self.exact.entry(s.as_bytes().into()).or_default().push(r);
                if let Some(ip) = ip {
                    self.scan.push((Cond::Cidr(IpRange::single(*ip)), r));
                }
            }
            Cond::Num(NumKey::Exact(bits)) => self.nums.entry(*bits).or_default().push(r),
            Cond::Num(NumKey::Literal(l)) => self
                .num_literals
                .entry(l.as_bytes().into())
                .or_default()
                .push(r),
            Cond::Bool(true) => self.trues.push(r),
            Cond::Bool(false) => self.falses.push(r),
            Cond::Null => self.nulls.push(r),
            Cond::Prefix(p) => self.prefix.insert(p.as_bytes(), r),
            Cond::Suffix(p) => self.suffix.insert(p.as_bytes(), r),
            Cond::PrefixIc(p) => self.prefix_ic.insert(p.as_bytes(), r),
            Cond::SuffixIc(p) => self.suffix_ic.insert(p.as_bytes(), r),
            Cond::EqIc(p) => self.eq_ic.entry(p.as_bytes().into()).or_default().push(r),
            Cond::Wildcard(w) => {
                if !w.has_star() {
                    self.exact
                        .entry(w.literal_prefix().into())
                        .or_default()
                        .push(r);
                } else if !w.literal_prefix().is_empty() {
                    self.wild_head.insert(w.literal_prefix(), (w.clone(), r));
                } else if !w.literal_suffix().is_empty() {
                    self.wild_tail.insert(w.literal_suffix(), (w.clone(), r));
                } else {
                    self.wild_rest.push((w.clone(), r));
                }
            }
            Cond::AnythingBut(_) | Cond::Numeric(_) | Cond::Cidr(_) => {
                self.scan.push((cond.clone(), r))
            }
            Cond::Exists(true) => self.exists.push(r),
            // Absence is decided by the matcher, not by values.
            Cond::Exists(false) => {}
        }
    }

    /// Removes every entry of `r` that `cond` created.
    pub(crate) fn remove(&mut self, cond: &Cond, r: Ref) {
        let same = |x: &Ref| *x == r;
        match cond {
            Cond::Str(s, _) => {
                remove_ref(&mut self.exact, s.as_bytes(), r);
                self.scan.retain(|(_, x)| *x != r);
            }
            Cond::Num(k) => match k {
                NumKey::Exact(bits) => {
                    if let Some(list) = self.nums.get_mut(bits) {
                        list.retain(|x| *x != r);
                        if list.is_empty() {
                            self.nums.remove(bits);
                        }
                    }
                }
                NumKey::Literal(l) => remove_ref(&mut self.num_literals, l.as_bytes(), r),
            },
            Cond::Bool(true) => self.trues.retain(|x| *x != r),
            Cond::Bool(false) => self.falses.retain(|x| *x != r),
            Cond::Null => self.nulls.retain(|x| *x != r),
            Cond::Prefix(p) => self.prefix.remove(p.as_bytes(), same),
            Cond::Suffix(p) => self.suffix.remove(p.as_bytes(), same),
            Cond::PrefixIc(p) => self.prefix_ic.remove(p.as_bytes(), same),
            Cond::SuffixIc(p) => self.suffix_ic.remove(p.as_bytes(), same),
            Cond::EqIc(p) => remove_ref(&mut self.eq_ic, p.as_bytes(), r),
            Cond::Wildcard(w) => {
                if !w.has_star() {
                    remove_ref(&mut self.exact, w.literal_prefix(), r);
                } else if !w.literal_prefix().is_empty() {
                    self.wild_head.remove(w.literal_prefix(), |(_, x)| *x == r);
                } else if !w.literal_suffix().is_empty() {
                    self.wild_tail.remove(w.literal_suffix(), |(_, x)| *x == r);
                } else {
                    self.wild_rest.retain(|(_, x)| *x != r);
                }
            }
            Cond::AnythingBut(_) | Cond::Numeric(_) | Cond::Cidr(_) => {
                self.scan.retain(|(_, x)| *x != r)
            }
            Cond::Exists(true) => self.exists.retain(|x| *x != r),
            Cond::Exists(false) => {}
        }
    }

    /// Calls `emit` for every condition the value satisfies (possibly more
    /// than once for the same ref).
    #[inline]
    pub(crate) fn lookup(&self, val: &Val<'_>, buf: &mut Vec<u8>, emit: &mut impl FnMut(Ref)) {
        for &r in &self.exists {
            emit(r);
        }
        match val.v {
            Value::Str(s) => self.lookup_str(s, buf, emit),
            Value::Num(n) => {
                let list = match val.exact {
                    Some(f) => self.nums.get(&f.to_bits()),
                    None => self.num_literals.get(n.as_bytes()),
                };
                list.into_iter().flatten().for_each(|&r| emit(r));
            }
            Value::Bool(true) => self.trues.iter().for_each(|&r| emit(r)),
            Value::Bool(false) => self.falses.iter().for_each(|&r| emit(r)),
            Value::Null => self.nulls.iter().for_each(|&r| emit(r)),
        }
        for (cond, r) in &self.scan {
            if eval::cond_matches(cond, val) {
                emit(*r);
            }
        }
    }

    fn lookup_str(&self, s: &[u8], buf: &mut Vec<u8>, emit: &mut impl FnMut(Ref)) {
        if let Some(list) = self.exact.get(s) {
            list.iter().for_each(|&r| emit(r));
        }
        self.prefix.probe(s, false, |&r| emit(r));
        self.suffix.probe(s, true, |&r| emit(r));
        if !self.wild_head.is_empty() {
            self.wild_head.probe(s, false, |(w, r)| {
                if w.matches_after_head(s) {
                    emit(*r)
                }
            });
        }
        if !self.wild_tail.is_empty() {
            self.wild_tail.probe(s, true, |(w, r)| {
                if w.matches(s) {
                    emit(*r)
                }
            });
        }
        for (w, r) in &self.wild_rest {
            if w.matches(s) {
                emit(*r);
            }
        }
        let needs_fold =
            !self.eq_ic.is_empty() || !self.prefix_ic.is_empty() || !self.suffix_ic.is_empty();
        if needs_fold && fold_into(s, buf) {
            let f = &buf[..];
            if let Some(list) = self.eq_ic.get(f) {
                list.iter().for_each(|&r| emit(r));
            }
            self.prefix_ic.probe(f, false, |&r| emit(r));
            self.suffix_ic.probe(f, true, |&r| emit(r));
        }
    }

    /// Is nothing indexed here?
    pub(crate) fn is_empty(&self) -> bool {
        self.exact.is_empty()
            && self.nums.is_empty()
            && self.num_literals.is_empty()
            && self.trues.is_empty()
            && self.falses.is_empty()
            && self.nulls.is_empty()
            && self.prefix.is_empty()
            && self.suffix.is_empty()
            && self.prefix_ic.is_empty()
            && self.suffix_ic.is_empty()
            && self.eq_ic.is_empty()
            && self.wild_head.is_empty()
            && self.wild_tail.is_empty()
            && self.wild_rest.is_empty()
            && self.scan.is_empty()
            && self.exists.is_empty()
    }

    /// A rough cost of nominating through `cond`: how many refs share its
    /// bucket, with scanned conditions counted as very costly. Used to pick
    /// each branch's most selective slot.
    pub(crate) fn cost(&self, cond: &Cond) -> usize {
        const SCANNED: usize = 1 << 20;
        let bucket = |map: &FxMap<Box<[u8]>, Vec<Ref>>, k: &[u8]| map.get(k).map_or(0, Vec::len);
        let affix =
            |a: &Affix<Ref>, k: &[u8]| a.map.get(k).map_or(0, Vec::len) + 64 / (k.len() + 1);
        match cond {
            Cond::Str(s, _) => bucket(&self.exact, s.as_bytes()),
            Cond::Num(NumKey::Exact(bits)) => self.nums.get(bits).map_or(0, Vec::len),
            Cond::Num(NumKey::Literal(l)) => bucket(&self.num_literals, l.as_bytes()),
            Cond::Bool(true) => self.trues.len(),
            Cond::Bool(false) => self.falses.len(),
            Cond::Null => self.nulls.len(),
            Cond::Prefix(p) => affix(&self.prefix, p.as_bytes()),
            Cond::Suffix(p) => affix(&self.suffix, p.as_bytes()),
            Cond::PrefixIc(p) => affix(&self.prefix_ic, p.as_bytes()),
            Cond::SuffixIc(p) => affix(&self.suffix_ic, p.as_bytes()),
            Cond::EqIc(p) => bucket(&self.eq_ic, p.as_bytes()),
            Cond::Wildcard(w) => {
                if !w.has_star() {
                    bucket(&self.exact, w.literal_prefix())
                } else if !w.literal_prefix().is_empty() {
                    self.wild_head
                        .map
                        .get(w.literal_prefix())
                        .map_or(0, Vec::len)
                        + 256 / (w.literal_prefix().len() + 1)
                } else if !w.literal_suffix().is_empty() {
                    self.wild_tail
                        .map
                        .get(w.literal_suffix())
                        .map_or(0, Vec::len)
                        + 256 / (w.literal_suffix().len() + 1)
                } else {
                    SCANNED / 2 + self.wild_rest.len()
                }
            }
            Cond::AnythingBut(_) | Cond::Numeric(_) | Cond::Cidr(_) => SCANNED + self.scan.len(),
            Cond::Exists(true) => SCANNED * 2 + self.exists.len(),
            Cond::Exists(false) => SCANNED * 4,
        }
    }
}

//! The compiled matcher: many patterns, one pass per event.
//!
//! Each pattern branch (one `$or` alternative) is a set of field slots. One
//! required slot per branch, the most selective at insertion time (its
//! "anchor"), is entered in that field's [`FieldIndex`]. The scanner hands
//! every value at a referenced field to the index, which nominates the
//! branches whose anchor the value satisfies; only those branches (plus the
//! rare ones with no required slot) are confirmed, slot by slot, against
//! the event's values. The work per event therefore follows the values and
//! the nominated branches, not the number of patterns. Array consistency
//! and `exists: false` are settled by a small search over matching values.

use std::collections::HashMap;
use std::hash::Hash;

use crate::error::{EventError, EventErrorKind};
use crate::eval::{self, Val};
use crate::index::{FieldIndex, Ref, Value};
use crate::json;
use crate::number;
use crate::paths::Paths;
use crate::pattern::{Cond, Pattern};
use crate::reference::DEFAULT_MAX_DEPTH;
use crate::scan::{self, Bufs, Raw, Sink};
use crate::screen::Screen;

/// The deepest nesting [`Matcher::set_max_depth`] accepts; the scanner
/// recurses along referenced paths, so this bounds its stack use.
pub const MAX_DEPTH_LIMIT: usize = 1024;

const NONE: u32 = u32::MAX;

/// Steps the array-consistency search may take per event. Ordinary events
/// need a handful; only adversarial arrays could need more, and those are
/// rejected rather than allowed to stall the matcher.
pub const SEARCH_BUDGET: u32 = 1 << 20;

#[derive(Debug, Clone)]
struct Slot {
    field: u32,
    absent_ok: bool,
    path: Box<str>,
    conds: Vec<Cond>,
}

#[derive(Debug, Clone)]
struct BranchInfo {
    pattern: u32,
    slots: Vec<Slot>,
    /// The slot entered in the index; `None` for branches checked on every
    /// event (all slots accept absence).
    anchor: Option<u32>,
    any_absent: bool,
}

#[derive(Debug, Clone)]
struct Entry<Id> {
    id: Id,
    branches: Vec<u32>,
}

/// Many patterns compiled into one matcher. Share it across threads:
/// matching takes `&self`.
#[derive(Debug, Clone)]
pub struct Matcher<Id> {
    paths: Paths,
    fields: Vec<FieldIndex>,
    branches: Vec<Option<BranchInfo>>,
    free_branches: Vec<u32>,
    /// Branches without an anchor, checked on every event.
    always: Vec<u32>,
    entries: Vec<Option<Entry<Id>>>,
    free_entries: Vec<u32>,
    ids: HashMap<Id, u32>,
    max_depth: usize,
}

/// One value found in the event.
#[derive(Debug, Clone, Copy)]
struct ValRec {
    kind: Kind,
    /// Byte range in the event, or in `Scratch::strbuf` when `unescaped`.
    start: u32,
    end: u32,
    unescaped: bool,
    /// For numbers exactly representable as doubles: the value.
    exact: Option<f64>,
    trail_start: u32,
    trail_len: u32,
    /// The next value of the same field.
    next: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Str,
    Num,
    True,
    False,
    Null,
}

/// Caller-owned scratch space for [`Matcher::matches_with`]; reuse it across
/// events to avoid allocation. One per thread.
#[derive(Debug, Default, Clone)]
pub struct Scratch {
    bufs: Bufs,
    epoch: u32,
    /// Trail arena: values point at ranges of it.
    trails: Vec<(u32, u32)>,
    vals: Vec<ValRec>,
    /// Unescaped strings.
    strbuf: Vec<u8>,
    /// Case-folded value for the index.
    fold_buf: Vec<u8>,
    field_stamp: Vec<u32>,
    field_head: Vec<u32>,
    branch_stamp: Vec<u32>,
    touched: Vec<u32>,
    entry_stamp: Vec<u32>,
    /// Confirmation workspace: matching (slot, value) pairs, the choice
    /// stack of the search.
    cands: Vec<(u32, u32)>,
    chosen: Vec<u32>,
}

impl Scratch {
    fn val<'a>(&'a self, event: &'a [u8], v: u32) -> Val<'a> {
        val_of(&self.vals[v as usize], &self.strbuf, event)
    }

    fn trail(&self, v: u32) -> &[(u32, u32)] {
        let r = &self.vals[v as usize];
        &self.trails[r.trail_start as usize..(r.trail_start + r.trail_len) as usize]
    }
}

/// The value a record stands for.
fn val_of<'a>(r: &ValRec, strbuf: &'a [u8], event: &'a [u8]) -> Val<'a> {
    let src = if r.unescaped { strbuf } else { event };
    let bytes = src
        .get(r.start as usize..r.end as usize)
        .unwrap_or_default();
    let v = match r.kind {
        Kind::Str => Value::Str(bytes),
        // Number literals are ASCII by construction.
        Kind::Num => Value::Num(std::str::from_utf8(bytes).unwrap_or("0")),
        Kind::True => Value::Bool(true),
        Kind::False => Value::Bool(false),
        Kind::Null => Value::Null,
    };
    Val { v, exact: r.exact }
}

impl<Id: Clone + Eq + Hash> Default for Matcher<Id> {
    fn default() -> Self {
        Self::new()
    }
}

impl<Id: Clone + Eq + Hash> Matcher<Id> {
    /// An empty matcher.
    pub fn new() -> Self {
        Matcher {
            paths: Paths::default(),
            fields: Vec::new(),
            branches: Vec::new(),
            free_branches: Vec::new(),
            always: Vec::new(),
            entries: Vec::new(),
            free_entries: Vec::new(),
            ids: HashMap::new(),
            max_depth: DEFAULT_MAX_DEPTH,
        }
    }

    /// Sets the nesting limit for events (default 256, at most
    /// [`MAX_DEPTH_LIMIT`]); deeper events are rejected with an error.
    pub fn set_max_depth(&mut self, depth: usize) {
        self.max_depth = depth.min(MAX_DEPTH_LIMIT);
    }

    /// The nesting limit for events.
    pub fn max_depth(&self) -> usize {
        self.max_depth
    }

    /// The number of patterns.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// True when no pattern has been added.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Adds a pattern under `id`; re-adding an id replaces its pattern.
    pub fn add(&mut self, id: Id, pattern: &Pattern) {
        self.remove(&id);
        let entry = alloc(&mut self.entries, &mut self.free_entries);
        let mut branch_ids = Vec::with_capacity(pattern.branches.len());
        for branch in &pattern.branches {
            let b = alloc(&mut self.branches, &mut self.free_branches);
            let slots: Vec<Slot> = branch
                .fields
                .iter()
                .map(|f| Slot {
                    field: self.paths.add(&f.path),
                    absent_ok: f.conds.contains(&Cond::Exists(false)),
                    path: f.path.clone(),
                    conds: f.conds.clone(),
                })
                .collect();
            if self.fields.len() < self.paths.len() {
                self.fields
                    .resize_with(self.paths.len(), FieldIndex::default);
            }
            // The anchor: the required slot whose conditions share their
            // index buckets with the fewest others.
            let anchor = slots
                .iter()
                .enumerate()
                .filter(|(_, sl)| !sl.absent_ok)
                .min_by_key(|(_, sl)| {
                    let index = &self.fields[sl.field as usize];
                    sl.conds.iter().map(|c| index.cost(c)).sum::<usize>()
                })
                .map(|(i, _)| to_u32(i));
            match anchor {
                Some(a) => {
                    let sl = &slots[a as usize];
                    let r = Ref { branch: b, slot: a };
                    for c in &sl.conds {
                        self.fields[sl.field as usize].insert(c, r);
                    }
                }
                None => self.always.push(b),
            }
            let any_absent = slots.iter().any(|sl| sl.absent_ok);
            self.branches[b as usize] = Some(BranchInfo {
                pattern: entry,
                slots,
                anchor,
                any_absent,
            });
            branch_ids.push(b);
        }
        self.entries[entry as usize] = Some(Entry {
            id: id.clone(),
            branches: branch_ids,
        });
        self.ids.insert(id, entry);
    }

    /// Removes the pattern under `id`; false if there was none.
    pub fn remove(&mut self, id: &Id) -> bool {
        let Some(entry) = self.ids.remove(id) else {
            return false;
        };
        let Some(e) = self.entries[entry as usize].take() else {
            return false;
        };
        for b in e.branches {
            let Some(info) = self.branches[b as usize].take() else {
                continue;
            };
            match info.anchor {
                Some(a) => {
                    let sl = &info.slots[a as usize];
                    let r = Ref { branch: b, slot: a };
                    for c in &sl.conds {
                        self.fields[sl.field as usize].remove(c, r);
                    }
                }
                None => self.always.retain(|&x| x != b),
            }
            for sl in &info.slots {
                self.paths.remove(&sl.path);
            }
            self.free_branches.push(b);
        }
        self.free_entries.push(entry);
        true
    }

    /// A screen over `fields` (dotted paths, as patterns spell them): a cheap test that
    /// rules out events which cannot match any pattern, from those fields' values alone.
    /// It describes the patterns added so far; build a new one after adding or removing.
    pub fn screen(&self, fields: &[&str]) -> Screen {
        let mut screen = Screen::new(fields);
        for info in self.branches.iter().flatten() {
            screen.add_branch(
                info.slots
                    .iter()
                    .map(|sl| (&*sl.path, !sl.absent_ok, sl.conds.as_slice())),
            );
        }
        screen
    }

    /// Matches one event given as raw JSON bytes; returns the ids of the
    /// matching patterns.
    pub fn matches(&self, event_json: &[u8]) -> Result<Vec<Id>, EventError> {
        let mut scratch = Scratch::default();
        let mut out = Vec::new();
        self.matches_with(event_json, &mut scratch, &mut out)?;
        Ok(out)
    }

    /// Same as [`Matcher::matches`], reusing caller-owned scratch space and
    /// output (the hot path; no allocation per event once warm). `out` is
    /// cleared first.
    pub fn matches_with(
        &self,
        event_json: &[u8],
        scratch: &mut Scratch,
        out: &mut Vec<Id>,
    ) -> Result<(), EventError> {
        out.clear();
        if u32::try_from(event_json.len()).is_err() {
            return Err(EventError::new(
                EventErrorKind::Syntax("event larger than 4 GiB"),
                0,
            ));
        }
        self.prepare(scratch);
        let mut bufs = std::mem::take(&mut scratch.bufs);
        let mut sink = Collect {
            m: self,
            s: &mut *scratch,
            event: event_json,
        };
        let r = scan::scan(
            event_json,
            &self.paths,
            self.max_depth,
            &mut bufs,
            &mut sink,
        );
        scratch.bufs = bufs;
        r?;
        let s = scratch;
        let mut budget = SEARCH_BUDGET;
        let exhausted = |out: &mut Vec<Id>| {
            out.clear();
            EventError::new(EventErrorKind::TooComplex, 0)
        };
        for k in 0..s.touched.len() {
            let b = s.touched[k];
            self.confirm(b, event_json, s, out, &mut budget)
                .map_err(|Exhausted| exhausted(out))?;
        }
        for &b in &self.always {
            self.confirm(b, event_json, s, out, &mut budget)
                .map_err(|Exhausted| exhausted(out))?;
        }
        Ok(())
    }

    /// Sizes the scratch for this matcher and starts a new epoch.
    fn prepare(&self, s: &mut Scratch) {
        s.epoch = s.epoch.wrapping_add(1);
        if s.epoch == 0 {
            // Stamps from 2^32 events ago could collide: start over.
            s.field_stamp.iter_mut().for_each(|x| *x = 0);
            s.branch_stamp.iter_mut().for_each(|x| *x = 0);
            s.entry_stamp.iter_mut().for_each(|x| *x = 0);
            s.epoch = 1;
        }
        if s.field_stamp.len() < self.fields.len() {
            s.field_stamp.resize(self.fields.len(), 0);
            s.field_head.resize(self.fields.len(), NONE);
        }
        if s.branch_stamp.len() < self.branches.len() {
            s.branch_stamp.resize(self.branches.len(), 0);
        }
        if s.entry_stamp.len() < self.entries.len() {
            s.entry_stamp.resize(self.entries.len(), 0);
        }
        s.trails.clear();
        s.vals.clear();
        s.strbuf.clear();
        s.touched.clear();
    }

    /// Checks a nominated branch against the event and records its pattern
    /// on success.
    fn confirm(
        &self,
        b: u32,
        event: &[u8],
        s: &mut Scratch,
        out: &mut Vec<Id>,
        budget: &mut u32,
    ) -> Result<(), Exhausted> {
        let Some(info) = &self.branches[b as usize] else {
            return Ok(());
        };
        let e = info.pattern as usize;
        if s.entry_stamp[e] == s.epoch {
            return Ok(()); // another branch of the pattern already matched
        }
        let mut cands = std::mem::take(&mut s.cands);
        cands.clear();
        let mut in_arrays = false;
        let mut ok = true;
        for (k, sl) in info.slots.iter().enumerate() {
            let f = sl.field as usize;
            let mut v = if s.field_stamp[f] == s.epoch {
                s.field_head[f]
            } else {
                NONE
            };
            let before = cands.len();
            // A lone value of the anchor field is what nominated the branch.
            let lone_anchor =
                info.anchor == Some(to_u32(k)) && v != NONE && s.vals[v as usize].next == NONE;
            while v != NONE {
                if lone_anchor
                    || sl
                        .conds
                        .iter()
                        .any(|c| eval::cond_matches(c, &s.val(event, v)))
                {
                    cands.push((to_u32(k), v));
                    in_arrays |= s.vals[v as usize].trail_len > 0;
                }
                v = s.vals[v as usize].next;
            }
            if cands.len() == before && !sl.absent_ok {
                ok = false;
                break;
            }
        }
        let mut result = Ok(());
        if ok && (info.any_absent || in_arrays) {
            ok = absences_possible(info, &cands, s);
            if ok {
                let mut chosen = std::mem::take(&mut s.chosen);
                chosen.clear();
                match dfs(info, 0, &cands, &mut chosen, s, budget) {
                    Ok(found) => ok = found,
                    Err(x) => {
                        ok = false;
                        result = Err(x);
                    }
                }
                s.chosen = chosen;
            }
        }
        s.cands = cands;
        if ok {
            s.entry_stamp[e] = s.epoch;
            if let Some(en) = &self.entries[e] {
                out.push(en.id.clone());
            }
        }
        result
    }
}

/// Takes a free slot of a slab, or grows it.
fn alloc<T>(slab: &mut Vec<Option<T>>, free: &mut Vec<u32>) -> u32 {
    free.pop().unwrap_or_else(|| {
        slab.push(None);
        to_u32(slab.len() - 1)
    })
}

fn to_u32(x: usize) -> u32 {
    u32::try_from(x).unwrap_or(u32::MAX)
}

/// The search ran out of [`SEARCH_BUDGET`].
struct Exhausted;

/// A quick necessary condition: a slot that can only be satisfied by
/// absence fails when its field has a value outside every array the
/// candidates use, since such a value fits any choice. This settles the
/// common cases before the search, and keeps the search from enumerating
/// combinations that are all doomed.
fn absences_possible(info: &BranchInfo, cands: &[(u32, u32)], s: &Scratch) -> bool {
    info.slots.iter().enumerate().all(|(k, sl)| {
        let k = to_u32(k);
        if !sl.absent_ok || cands.iter().any(|&(x, _)| x == k) {
            return true;
        }
        let f = sl.field as usize;
        if s.field_stamp[f] != s.epoch {
            return true;
        }
        let mut v = s.field_head[f];
        while v != NONE {
            let free = s.trail(v).iter().all(|&(arr, _)| {
                !cands
                    .iter()
                    .any(|&(_, c)| s.trail(c).iter().any(|&(a, _)| a == arr))
            });
            if free {
                return false;
            }
            v = s.vals[v as usize].next;
        }
        true
    })
}

/// Is there an array-consistent choice of one matching value per slot (or
/// absence, where allowed) such that no absent slot has a value that is
/// consistent with the choice? `cands` is ordered by slot.
fn dfs(
    info: &BranchInfo,
    slot: usize,
    cands: &[(u32, u32)],
    chosen: &mut Vec<u32>,
    s: &Scratch,
    budget: &mut u32,
) -> Result<bool, Exhausted> {
    *budget = budget.checked_sub(1).ok_or(Exhausted)?;
    let Some(sl) = info.slots.get(slot) else {
        return Ok(absences_hold(info, chosen, s));
    };
    let slot32 = to_u32(slot);
    let start = cands.partition_point(|&(x, _)| x < slot32);
    let mut tried: Option<(u32, u32)> = None;
    for &(x, val) in &cands[start..] {
        if x != slot32 {
            break;
        }
        // Values with the same trail are interchangeable here.
        let r = &s.vals[val as usize];
        let key = (r.trail_start, r.trail_len);
        if tried == Some(key) {
            continue;
        }
        tried = Some(key);
        if chosen.iter().all(|&c| consistent(s, c, val)) {
            chosen.push(val);
            let ok = dfs(info, slot + 1, cands, chosen, s, budget);
            chosen.pop();
            if ok? {
                return Ok(true);
            }
        }
    }
    if sl.absent_ok {
        chosen.push(NONE);
        let ok = dfs(info, slot + 1, cands, chosen, s, budget);
        chosen.pop();
        return ok;
    }
    Ok(false)
}

/// For each slot chosen absent: no value of its field fits the choice.
fn absences_hold(info: &BranchInfo, chosen: &[u32], s: &Scratch) -> bool {
    info.slots.iter().zip(chosen).all(|(sl, &c)| {
        if c != NONE {
            return true;
        }
        let f = sl.field as usize;
        if s.field_stamp[f] != s.epoch {
            return true; // the field has no values at all
        }
        let mut v = s.field_head[f];
        while v != NONE {
            if chosen.iter().all(|&c| consistent(s, c, v)) {
                return false;
            }
            v = s.vals[v as usize].next;
        }
        true
    })
}

/// Values may be combined unless they sit in different elements of the same
/// array. Trails run from the root, so shared arrays form a common prefix.
fn consistent(s: &Scratch, a: u32, b: u32) -> bool {
    if a == NONE || b == NONE {
        return true;
    }
    for (x, y) in s.trail(a).iter().zip(s.trail(b)) {
        if x.0 != y.0 {
            return true;
        }
        if x.1 != y.1 {
            return false;
        }
    }
    true
}

/// The scanner's sink: records each value and asks the field's index which
/// branches it nominates.
struct Collect<'m, 's, 'e, Id> {
    m: &'m Matcher<Id>,
    s: &'s mut Scratch,
    event: &'e [u8],
}

impl<Id> Sink for Collect<'_, '_, '_, Id> {
    #[inline]
    fn value(&mut self, field: u32, raw: Raw, trail: &[(u32, u32)]) -> Result<(), EventError> {
        let s = &mut *self.s;
        let f = field as usize;
        let (kind, start, end, unescaped, exact) = match raw {
            Raw::Str {
                start,
                end,
                escaped: false,
            } => (Kind::Str, start, end, false, None),
            Raw::Str {
                start,
                end,
                escaped: true,
            } => {
                let from = s.strbuf.len();
                json::unescape_into(&self.event[start..end], start, &mut s.strbuf)
                    .map_err(|e| EventError::new(EventErrorKind::Syntax(e.reason), e.offset))?;
                (Kind::Str, from, s.strbuf.len(), true, None)
            }
            Raw::Num { start, end } => {
                let lit = std::str::from_utf8(&self.event[start..end]).unwrap_or("0");
                (Kind::Num, start, end, false, number::exact_f64(lit))
            }
            Raw::Bool(true) => (Kind::True, 0, 0, false, None),
            Raw::Bool(false) => (Kind::False, 0, 0, false, None),
            Raw::Null => (Kind::Null, 0, 0, false, None),
        };
        // Store the trail, sharing the previous value's when equal.
        let (trail_start, trail_len) = match s.vals.last() {
            _ if trail.is_empty() => (0, 0),
            Some(p)
                if p.trail_len as usize == trail.len()
                    && s.trails[p.trail_start as usize..(p.trail_start + p.trail_len) as usize]
                        == *trail =>
            {
                (p.trail_start, p.trail_len)
            }
            _ => {
                let ts = to_u32(s.trails.len());
                s.trails.extend_from_slice(trail);
                (ts, to_u32(trail.len()))
            }
        };
        let vi = to_u32(s.vals.len());
        let next = if s.field_stamp[f] == s.epoch {
            s.field_head[f]
        } else {
            s.field_stamp[f] = s.epoch;
            NONE
        };
        s.field_head[f] = vi;
        s.vals.push(ValRec {
            kind,
            start: to_u32(start),
            end: to_u32(end),
            unescaped,
            exact,
            trail_start,
            trail_len,
            next,
        });
        let index = &self.m.fields[f];
        if index.is_empty() {
            return Ok(());
        }
        let val = val_of(&s.vals[vi as usize], &s.strbuf, self.event);
        let (stamps, touched, epoch) = (&mut s.branch_stamp, &mut s.touched, s.epoch);
        index.lookup(&val, &mut s.fold_buf, &mut |r: Ref| {
            let b = r.branch as usize;
            if stamps[b] != epoch {
                stamps[b] = epoch;
                touched.push(r.branch);
            }
        });
        Ok(())
    }
}

/// A compile-time check that the matcher can be shared across threads.
#[allow(dead_code)]
fn assert_send_sync() {
    fn is<T: Send + Sync>() {}
    is::<Matcher<String>>();
    is::<Scratch>();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::EventErrorKind;

    /// Builds a matcher from (id, pattern) pairs and checks which ids match.
    fn check(patterns: &[(u32, &str)], event: &str, expect: &[u32]) {
        let mut m = Matcher::new();
        for (id, p) in patterns {
            m.add(*id, &Pattern::parse(p).unwrap());
        }
        let mut got = m.matches(event.as_bytes()).unwrap();
        got.sort_unstable();
        assert_eq!(got, expect, "{event}");
    }

    #[test]
    fn matches_many_at_once() {
        let ps = [
            (1, r#"{"source":["aws.s3"]}"#),
            (
                2,
                r#"{"source":["aws.s3"],"detail":{"eventName":[{"prefix":"Delete"}]}}"#,
            ),
            (
                3,
                r#"{"detail":{"eventName":["DeleteBucket"],"errorCode":[{"exists":false}]}}"#,
            ),
            (
                4,
                r#"{"detail":{"$or":[{"a":["1"]},{"eventName":[{"suffix":"Bucket"}]}]}}"#,
            ),
            (5, r#"{"detail":{"x":[{"exists":false}]}}"#),
            (6, r#"{"source":["aws.ec2"]}"#),
        ];
        let event = r#"{"source":"aws.s3","detail":{"eventName":"DeleteBucket"}}"#;
        check(&ps, event, &[1, 2, 3, 4, 5]);
        check(&ps, r#"{"source":"aws.ec2","detail":{"x":1}}"#, &[6]);
    }

    #[test]
    fn escaped_and_dotted_keys() {
        let ps = [(1, r#"{"a":{"b.c":["x"]}}"#), (2, r#"{"é":["\u00e9"]}"#)];
        check(&ps, r#"{"a.b":{"c":"x"}}"#, &[1]);
        check(&ps, r#"{"a":{"b":{"c":"x"}}}"#, &[1]);
        check(&ps, r#"{"\u0061":{"b.c":"\u0078"}}"#, &[1]);
        check(&ps, r#"{"\u00e9":"é"}"#, &[2]);
    }

    #[test]
    fn add_remove_replace() {
        let mut m = Matcher::new();
        let a = Pattern::parse(r#"{"k":["a"]}"#).unwrap();
        let b = Pattern::parse(r#"{"k":["b"]}"#).unwrap();
        m.add("x", &a);
        m.add("y", &a);
        assert_eq!(m.len(), 2);
        m.add("x", &b); // replaces
        assert_eq!(m.len(), 2);
        assert_eq!(m.matches(br#"{"k":"a"}"#).unwrap(), ["y"]);
        assert_eq!(m.matches(br#"{"k":"b"}"#).unwrap(), ["x"]);
        assert!(m.remove(&"y"));
        assert!(!m.remove(&"y"));
        assert!(m.matches(br#"{"k":"a"}"#).unwrap().is_empty());
        assert!(m.remove(&"x"));
        assert!(m.is_empty());
        assert!(m.matches(br#"{"k":"b"}"#).unwrap().is_empty());
    }

    #[test]
    fn scratch_reuse_across_matchers() {
        let mut small = Matcher::new();
        small.add(1, &Pattern::parse(r#"{"a":["x"]}"#).unwrap());
        let mut big = Matcher::new();
        for i in 0..50 {
            big.add(i, &Pattern::parse(&format!(r#"{{"b{i}":["y"]}}"#)).unwrap());
        }
        let (mut s, mut out) = (Scratch::default(), Vec::new());
        for _ in 0..3 {
            small
                .matches_with(br#"{"a":"x"}"#, &mut s, &mut out)
                .unwrap();
            assert_eq!(out, [1]);
            big.matches_with(br#"{"b7":"y","a":"x"}"#, &mut s, &mut out)
                .unwrap();
            assert_eq!(out, [7]);
        }
    }

    #[test]
    fn event_errors() {
        let mut m = Matcher::new();
        m.add(1, &Pattern::parse(r#"{"a":{"b":["x"]}}"#).unwrap());
        let err = |e: &str| m.matches(e.as_bytes()).unwrap_err();
        assert_eq!(
            err(r#"{"a":"#).kind(),
            EventErrorKind::Syntax("unexpected end of input")
        );
        assert_eq!(err(r#"[1]"#).kind(), EventErrorKind::NotAnObject);
        assert_eq!(err(r#"{"a":{"b":"\q"}}"#).offset(), 12);
        assert!(matches!(
            err(r#"{"a":{"b":"x"}} x"#).kind(),
            EventErrorKind::Syntax(_)
        ));
        let deep = format!(r#"{{"z":{}1{}}}"#, "[".repeat(300), "]".repeat(300));
        assert_eq!(err(&deep).kind(), EventErrorKind::TooDeep);
        m.set_max_depth(400);
        assert!(m.matches(deep.as_bytes()).is_ok());
        m.set_max_depth(usize::MAX);
        assert_eq!(m.max_depth(), MAX_DEPTH_LIMIT);
    }

    #[test]
    fn adversarial_arrays_stay_bounded() {
        // Three fields in separate arrays and a field whose absence is
        // required: 300^3 combinations if searched naively.
        let p = r#"{"a":[{"exists":true}],"b":[{"exists":true}],"c":[{"exists":true}],"d":[{"exists":false}]}"#;
        let list = |n: usize| format!("[{}]", vec!["1"; n].join(","));
        let mut m = Matcher::new();
        m.add(1, &Pattern::parse(p).unwrap());
        let top = format!(r#"{{"a":{0},"b":{0},"c":{0},"d":1}}"#, list(300));
        assert!(m.matches(top.as_bytes()).unwrap().is_empty());
        let nested = format!(r#"{{"a":{0},"b":{0},"c":{0},"d":[1]}}"#, list(300));
        assert!(m.matches(nested.as_bytes()).unwrap().is_empty());
        // Absence that depends on the choice still works.
        let ok = r#"{"x":[{"a":1,"b":2,"c":3},{"a":1,"b":2,"c":3,"d":4}]}"#;
        let mut m2 = Matcher::new();
        m2.add(
            1,
            &Pattern::parse(r#"{"x":{"a":[1],"b":[2],"c":[3],"d":[{"exists":false}]}}"#).unwrap(),
        );
        assert_eq!(m2.matches(ok.as_bytes()).unwrap(), [1]);
        // When the pre-check cannot help, the budget stops the search.
        let mut m3 = Matcher::new();
        let p3 =
            r#"{"x":{"a":[1],"d":[{"exists":false}]},"b":[{"exists":true}],"c":[{"exists":true}]}"#;
        m3.add(1, &Pattern::parse(p3).unwrap());
        let hard = format!(r#"{{"x":[{{"a":1,"d":1}}],"b":{0},"c":{0}}}"#, list(1100));
        let err = m3.matches(hard.as_bytes()).unwrap_err();
        assert_eq!(err.kind(), EventErrorKind::TooComplex);
    }
}

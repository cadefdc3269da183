//! The compiled matcher: many patterns, one pass per event.
//!
//! Each pattern branch (one `$or` alternative) is a set of field slots. The
//! scanner hands every value at a referenced field to that field's
//! [`FieldIndex`], which names the (branch, slot) pairs it satisfies. A
//! per-branch bit mask counts satisfied slots (counting-style AND), so the
//! work per event follows the values and hits, not the number of patterns.
//! Only branches whose required slots are all hit are checked further: for
//! array consistency and `exists: false`, by a small search over hits.

use std::collections::HashMap;
use std::hash::Hash;

use crate::error::EventError;
use crate::index::{FieldIndex, Ref, Value};
use crate::paths::Paths;
use crate::pattern::{Cond, Pattern};
use crate::reference::DEFAULT_MAX_DEPTH;
use crate::scan::{self, Bufs, Sink};

/// The deepest nesting [`Matcher::set_max_depth`] accepts; the scanner
/// recurses along referenced paths, so this bounds its stack use.
pub const MAX_DEPTH_LIMIT: usize = 1024;

const NONE: u32 = u32::MAX;

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
    /// Slots that must be hit (no `exists: false` alternative).
    required: u64,
    /// Needs the search even when every required slot is hit.
    needs_search: bool,
    /// Listed in `Matcher::always`.
    always: bool,
}

#[derive(Debug, Clone)]
struct Entry<Id> {
    id: Id,
    branches: Vec<u32>,
}

/// Many patterns compiled into one matcher. Cheap to share across threads:
/// matching takes `&self`.
#[derive(Debug, Clone)]
pub struct Matcher<Id> {
    paths: Paths,
    fields: Vec<FieldIndex>,
    branches: Vec<Option<BranchInfo>>,
    free_branches: Vec<u32>,
    /// Branches that can match with no hits at all (only `exists: false`
    /// slots) or that have too many slots for the mask; checked every event.
    always: Vec<u32>,
    entries: Vec<Option<Entry<Id>>>,
    free_entries: Vec<u32>,
    ids: HashMap<Id, u32>,
    max_depth: usize,
}

/// Caller-owned scratch space for [`Matcher::matches_with`]; reuse it across
/// events to avoid allocation. One per thread.
#[derive(Debug, Default, Clone)]
pub struct Scratch {
    bufs: Bufs,
    epoch: u32,
    /// Trail arena: values point at ranges of it.
    trails: Vec<(u32, u32)>,
    /// Per value: (trail start, trail len, next value of the same field).
    vals: Vec<(u32, u32, u32)>,
    field_stamp: Vec<u32>,
    field_head: Vec<u32>,
    /// Per hit: (slot, value, next hit of the same branch).
    hits: Vec<(u32, u32, u32)>,
    branch_stamp: Vec<u32>,
    branch_mask: Vec<u64>,
    branch_head: Vec<u32>,
    branch_arrays: Vec<bool>,
    touched: Vec<u32>,
    entry_stamp: Vec<u32>,
    /// Search workspace: candidate (slot, value) pairs and the choice stack.
    cands: Vec<(u32, u32)>,
    chosen: Vec<u32>,
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
        let entry = match self.free_entries.pop() {
            Some(e) => e,
            None => {
                self.entries.push(None);
                to_u32(self.entries.len() - 1)
            }
        };
        let mut branch_ids = Vec::with_capacity(pattern.branches.len());
        for branch in &pattern.branches {
            let b = match self.free_branches.pop() {
                Some(b) => b,
                None => {
                    self.branches.push(None);
                    to_u32(self.branches.len() - 1)
                }
            };
            let mut slots = Vec::with_capacity(branch.fields.len());
            let mut required = 0u64;
            let mut any_absent = false;
            for (s, f) in branch.fields.iter().enumerate() {
                let field = self.paths.add(&f.path);
                if self.fields.len() < self.paths.len() {
                    self.fields
                        .resize_with(self.paths.len(), FieldIndex::default);
                }
                let r = Ref {
                    branch: b,
                    slot: to_u32(s),
                };
                for c in &f.conds {
                    self.fields[field as usize].insert(c, r);
                }
                let absent_ok = f.conds.contains(&Cond::Exists(false));
                any_absent |= absent_ok;
                if !absent_ok && s < 64 {
                    required |= 1 << s;
                }
                slots.push(Slot {
                    field,
                    absent_ok,
                    path: f.path.clone(),
                    conds: f.conds.clone(),
                });
            }
            let wide = slots.len() > 64;
            let always = required == 0 || wide;
            if always {
                self.always.push(b);
            }
            self.branches[b as usize] = Some(BranchInfo {
                pattern: entry,
                slots,
                required,
                needs_search: any_absent || wide,
                always,
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
            for (s, slot) in info.slots.iter().enumerate() {
                let r = Ref {
                    branch: b,
                    slot: to_u32(s),
                };
                for c in &slot.conds {
                    self.fields[slot.field as usize].remove(c, r);
                }
                self.paths.remove(&slot.path);
            }
            self.always.retain(|&x| x != b);
            self.free_branches.push(b);
        }
        self.free_entries.push(entry);
        true
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
        self.prepare(scratch);
        let mut bufs = std::mem::take(&mut scratch.bufs);
        let mut sink = Collect {
            m: self,
            s: &mut *scratch,
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
        for k in 0..s.touched.len() {
            let b = s.touched[k];
            let Some(info) = &self.branches[b as usize] else {
                continue;
            };
            let mask = s.branch_mask[b as usize];
            if info.always || mask & info.required != info.required {
                continue; // handled below, or a required slot has no hit
            }
            if (info.needs_search || s.branch_arrays[b as usize]) && !self.search(b, info, s) {
                continue;
            }
            self.emit(info.pattern, s, out);
        }
        for &b in &self.always {
            let Some(info) = &self.branches[b as usize] else {
                continue;
            };
            if s.branch_stamp[b as usize] != s.epoch {
                s.branch_stamp[b as usize] = s.epoch;
                s.branch_mask[b as usize] = 0;
                s.branch_head[b as usize] = NONE;
                s.branch_arrays[b as usize] = false;
            }
            if self.search(b, info, s) {
                self.emit(info.pattern, s, out);
            }
        }
        Ok(())
    }

    fn emit(&self, entry: u32, s: &mut Scratch, out: &mut Vec<Id>) {
        let e = entry as usize;
        if s.entry_stamp[e] == s.epoch {
            return;
        }
        s.entry_stamp[e] = s.epoch;
        if let Some(en) = &self.entries[e] {
            out.push(en.id.clone());
        }
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
        let nb = self.branches.len();
        if s.branch_stamp.len() < nb {
            s.branch_stamp.resize(nb, 0);
            s.branch_mask.resize(nb, 0);
            s.branch_head.resize(nb, NONE);
            s.branch_arrays.resize(nb, false);
        }
        if s.entry_stamp.len() < self.entries.len() {
            s.entry_stamp.resize(self.entries.len(), 0);
        }
        s.trails.clear();
        s.vals.clear();
        s.hits.clear();
        s.touched.clear();
    }

    /// Is there an array-consistent choice of one hit value per slot (or
    /// absence, where allowed) such that no absent slot has a value that is
    /// consistent with the choice?
    fn search(&self, b: u32, info: &BranchInfo, s: &mut Scratch) -> bool {
        let mut cands = std::mem::take(&mut s.cands);
        cands.clear();
        let mut h = s.branch_head[b as usize];
        while h != NONE {
            let (slot, val, next) = s.hits[h as usize];
            cands.push((slot, val));
            h = next;
        }
        cands.sort_unstable();
        cands.dedup();
        let mut chosen = std::mem::take(&mut s.chosen);
        chosen.clear();
        let found = self.dfs(info, 0, &cands, &mut chosen, s);
        s.cands = cands;
        s.chosen = chosen;
        found
    }

    fn dfs(
        &self,
        info: &BranchInfo,
        slot: usize,
        cands: &[(u32, u32)],
        chosen: &mut Vec<u32>,
        s: &Scratch,
    ) -> bool {
        let Some(sl) = info.slots.get(slot) else {
            return self.absences_hold(info, chosen, s);
        };
        let slot32 = to_u32(slot);
        let start = cands.partition_point(|&(x, _)| x < slot32);
        for &(x, val) in &cands[start..] {
            if x != slot32 {
                break;
            }
            if chosen.iter().all(|&c| consistent(s, c, val)) {
                chosen.push(val);
                let ok = self.dfs(info, slot + 1, cands, chosen, s);
                chosen.pop();
                if ok {
                    return true;
                }
            }
        }
        if sl.absent_ok {
            chosen.push(NONE);
            let ok = self.dfs(info, slot + 1, cands, chosen, s);
            chosen.pop();
            return ok;
        }
        false
    }

    /// For each slot chosen absent: no value of its field fits the choice.
    fn absences_hold(&self, info: &BranchInfo, chosen: &[u32], s: &Scratch) -> bool {
        info.slots.iter().zip(chosen).all(|(sl, &c)| {
            if c != NONE {
                return true;
            }
            let f = sl.field as usize;
            if s.field_stamp.get(f) != Some(&s.epoch) {
                return true; // the field has no values at all
            }
            let mut v = s.field_head[f];
            while v != NONE {
                if chosen.iter().all(|&c| c == NONE || consistent(s, c, v)) {
                    return false;
                }
                v = s.vals[v as usize].2;
            }
            true
        })
    }
}

fn to_u32(x: usize) -> u32 {
    u32::try_from(x).unwrap_or(u32::MAX)
}

/// Values may be combined unless they sit in different elements of the same
/// array. Trails run from the root, so shared arrays form a common prefix.
fn consistent(s: &Scratch, a: u32, b: u32) -> bool {
    if a == NONE || b == NONE {
        return true;
    }
    let (sa, la, _) = s.vals[a as usize];
    let (sb, lb, _) = s.vals[b as usize];
    let ta = &s.trails[sa as usize..(sa + la) as usize];
    let tb = &s.trails[sb as usize..(sb + lb) as usize];
    for (x, y) in ta.iter().zip(tb) {
        if x.0 != y.0 {
            return true;
        }
        if x.1 != y.1 {
            return false;
        }
    }
    true
}

/// The scanner's sink: records the value's trail and collects its hits.
struct Collect<'m, 's, Id> {
    m: &'m Matcher<Id>,
    s: &'s mut Scratch,
}

impl<Id> Sink for Collect<'_, '_, Id> {
    #[inline]
    fn value(&mut self, field: u32, v: Value<'_>, trail: &[(u32, u32)]) {
        let s = &mut *self.s;
        let f = field as usize;
        let Some(index) = self.m.fields.get(f) else {
            return;
        };
        // Store the trail, sharing the previous one when equal.
        let (ts, tl) = if trail.is_empty() {
            (0, 0)
        } else {
            match s.vals.last() {
                Some(&(ps, pl, _))
                    if pl as usize == trail.len()
                        && s.trails[ps as usize..(ps + pl) as usize] == *trail =>
                {
                    (ps, pl)
                }
                _ => {
                    let ps = to_u32(s.trails.len());
                    s.trails.extend_from_slice(trail);
                    (ps, to_u32(trail.len()))
                }
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
        s.vals.push((ts, tl, next));
        let in_array = tl > 0;
        index.lookup(v, &mut |r: Ref| {
            let b = r.branch as usize;
            if s.branch_stamp[b] != s.epoch {
                s.branch_stamp[b] = s.epoch;
                s.branch_mask[b] = 0;
                s.branch_head[b] = NONE;
                s.branch_arrays[b] = false;
                s.touched.push(r.branch);
            }
            if r.slot < 64 {
                s.branch_mask[b] |= 1 << r.slot;
            }
            s.branch_arrays[b] |= in_array;
            let h = to_u32(s.hits.len());
            s.hits.push((r.slot, vi, s.branch_head[b]));
            s.branch_head[b] = h;
        });
    }
}

/// A compile-time check that the matcher can be shared across threads.
#[allow(dead_code)]
fn assert_send_sync() {
    fn is<T: Send + Sync>() {}
    is::<Matcher<String>>();
    is::<Scratch>();
}

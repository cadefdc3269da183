//! The set of event paths some pattern reads, as a trie the scanner walks
//! key by key.
//!
//! Paths are dot-joined (Ruler's rule), so the event `{"a.b":{"c":1}}` and
//! `{"a":{"b.c":1}}` both reach `a.b.c`. A node stands for a dot-boundary
//! prefix of some pattern path; from a node, every longer such prefix is
//! reachable in one step by the remainder text, which may itself contain
//! dots. Unlisted keys lead nowhere, and the scanner skips their values.

use crate::hash::FxMap;

/// The root node (the event object itself).
pub(crate) const ROOT: u32 = 0;

#[derive(Debug, Default, Clone)]
pub(crate) struct Node {
    /// Remainder text → node.
    pub(crate) children: FxMap<Box<[u8]>, u32>,
    /// One bit per child key (see [`key_bit`]): most event keys nobody
    /// reads are turned away without hashing.
    bloom: u64,
    /// True when a pattern field ends here (the node id is the field id).
    pub(crate) is_field: bool,
    /// Number of registered fields at or below this prefix.
    refs: u32,
    /// Number of registrations of this exact path as a field.
    field_refs: u32,
    prefix: Box<str>,
}

#[derive(Debug, Clone)]
pub(crate) struct Paths {
    pub(crate) nodes: Vec<Node>,
    free: Vec<u32>,
    by_prefix: FxMap<Box<str>, u32>,
}

impl Default for Paths {
    fn default() -> Paths {
        Paths {
            nodes: vec![Node::default()],
            free: Vec::new(),
            by_prefix: FxMap::default(),
        }
    }
}

/// The bloom bit of a key, from its length and first and last bytes.
#[inline]
fn key_bit(key: &[u8]) -> u64 {
    let (first, last) = match key {
        [] => (0, 0),
        [f, .., l] => (*f, *l),
        [f] => (*f, *f),
    };
    let h = (key.len() as u32).wrapping_mul(0x9E37_79B9)
        ^ u32::from(first).wrapping_mul(31)
        ^ u32::from(last);
    1 << (h.wrapping_mul(0x85EB_CA6B) >> 26)
}

/// Byte offsets just past each dot-boundary prefix of `path`.
fn boundaries(path: &str) -> impl Iterator<Item = usize> + '_ {
    path.bytes()
        .enumerate()
        .filter(|&(_, c)| c == b'.')
        .map(|(i, _)| i)
        .chain(std::iter::once(path.len()))
}

impl Paths {
    /// Registers one use of `path` as a field; returns its field id.
    pub(crate) fn add(&mut self, path: &str) -> u32 {
        let ends: Vec<usize> = boundaries(path).collect();
        let mut ids = Vec::with_capacity(ends.len());
        for &end in &ends {
            let prefix = &path[..end];
            let id = match self.by_prefix.get(prefix) {
                Some(&id) => id,
                None => {
                    let id = self.alloc(prefix);
                    // Link from the root and from every shorter prefix.
                    self.link(ROOT, prefix.as_bytes(), id);
                    for (&parent_end, &parent) in ends.iter().zip(&ids) {
                        self.link(parent, &path.as_bytes()[parent_end + 1..end], id);
                    }
                    id
                }
            };
            self.nodes[id as usize].refs += 1;
            ids.push(id);
        }
        let field = *ids.last().unwrap_or(&ROOT);
        let node = &mut self.nodes[field as usize];
        node.is_field = true;
        node.field_refs += 1;
        field
    }

    /// Drops one use of `path` registered by [`Paths::add`].
    pub(crate) fn remove(&mut self, path: &str) {
        let ends: Vec<usize> = boundaries(path).collect();
        let ids: Vec<u32> = ends
            .iter()
            .filter_map(|&end| self.by_prefix.get(&path[..end]).copied())
            .collect();
        if ids.len() != ends.len() {
            return;
        }
        if let Some(&field) = ids.last() {
            let node = &mut self.nodes[field as usize];
            node.field_refs = node.field_refs.saturating_sub(1);
            node.is_field = node.field_refs > 0;
        }
        for (k, &id) in ids.iter().enumerate() {
            let node = &mut self.nodes[id as usize];
            node.refs = node.refs.saturating_sub(1);
            if node.refs > 0 {
                continue;
            }
            let prefix = std::mem::take(&mut node.prefix);
            node.children.clear();
            node.bloom = 0;
            self.by_prefix.remove(&prefix);
            self.unlink(ROOT, prefix.as_bytes());
            for (&parent_end, &parent) in ends.iter().zip(&ids[..k]) {
                self.unlink(parent, &path.as_bytes()[parent_end + 1..ends[k]]);
            }
            self.free.push(id);
        }
    }

    fn link(&mut self, parent: u32, key: &[u8], child: u32) {
        let node = &mut self.nodes[parent as usize];
        node.children.insert(key.into(), child);
        node.bloom |= key_bit(key);
    }

    fn unlink(&mut self, parent: u32, key: &[u8]) {
        let node = &mut self.nodes[parent as usize];
        node.children.remove(key);
        node.bloom = node.children.keys().fold(0, |b, k| b | key_bit(k));
    }

    fn alloc(&mut self, prefix: &str) -> u32 {
        let node = Node {
            prefix: prefix.into(),
            ..Node::default()
        };
        let id = match self.free.pop() {
            Some(id) => {
                self.nodes[id as usize] = node;
                id
            }
            None => {
                self.nodes.push(node);
                u32::try_from(self.nodes.len() - 1).unwrap_or(u32::MAX)
            }
        };
        self.by_prefix.insert(prefix.into(), id);
        id
    }

    /// The child reached from `node` by key `key`, if any pattern reads it.
    #[inline]
    pub(crate) fn child(&self, node: u32, key: &[u8]) -> Option<u32> {
        let n = &self.nodes[node as usize];
        if n.bloom & key_bit(key) == 0 {
            return None;
        }
        n.children.get(key).copied()
    }

    pub(crate) fn node(&self, id: u32) -> &Node {
        &self.nodes[id as usize]
    }

    pub(crate) fn len(&self) -> usize {
        self.nodes.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn walk(p: &Paths, keys: &[&str]) -> Option<u32> {
        keys.iter().try_fold(ROOT, |n, k| p.child(n, k.as_bytes()))
    }

    #[test]
    fn dot_joined_walks() {
        let mut p = Paths::default();
        let f = p.add("a.b.c");
        assert_eq!(walk(&p, &["a", "b", "c"]), Some(f));
        assert_eq!(walk(&p, &["a.b", "c"]), Some(f));
        assert_eq!(walk(&p, &["a", "b.c"]), Some(f));
        assert_eq!(walk(&p, &["a.b.c"]), Some(f));
        assert_eq!(walk(&p, &["a", "bc"]), None);
        assert!(p.node(f).is_field);
        assert!(!p.node(walk(&p, &["a"]).unwrap()).is_field);
        let g = p.add("a.b");
        assert!(p.node(g).is_field);
        p.remove("a.b.c");
        assert_eq!(walk(&p, &["a", "b", "c"]), None);
        assert_eq!(walk(&p, &["a", "b"]), Some(g));
        p.remove("a.b");
        assert!(p.node(ROOT).children.is_empty());
        // Freed nodes are reused.
        let h = p.add("x");
        assert!(usize::try_from(h).unwrap() < 4);
    }
}

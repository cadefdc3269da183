//! The set of event paths some pattern reads, as a trie the scanner walks
//! key by key.
//!
//! Paths are dot-joined (Ruler's rule), so the event `{"a.b":{"c":1}}` and
//! `{"a":{"b.c":1}}` both reach `a.b.c`. The trie is keyed by dot-separated
//! segments, and a key containing dots walks several segments: both
//! spellings take the same steps, and the trie stays linear in the pattern
//! size. Keys that lead nowhere are skipped by the scanner.

use crate::hash::FxMap;

/// The root node (the event object itself).
pub(crate) const ROOT: u32 = 0;

#[derive(Debug, Default, Clone)]
pub(crate) struct Node {
    /// Segment → node.
    children: FxMap<Box<[u8]>, u32>,
    /// One bit per child segment (see [`key_bit`]): most event keys nobody
    /// reads are turned away without hashing.
    bloom: u64,
    /// True when a pattern field ends here (the node id is the field id).
    pub(crate) is_field: bool,
    /// Registered fields at or below this node.
    refs: u32,
    /// Registrations of this exact path as a field.
    field_refs: u32,
}

impl Node {
    pub(crate) fn has_children(&self) -> bool {
        !self.children.is_empty()
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Paths {
    nodes: Vec<Node>,
    free: Vec<u32>,
}

impl Default for Paths {
    fn default() -> Paths {
        Paths {
            nodes: vec![Node::default()],
            free: Vec::new(),
        }
    }
}

/// The bloom bit of a segment, from its length and first and last bytes.
#[inline]
fn key_bit(key: &[u8]) -> u64 {
    let (first, last) = match key {
        [] => (0, 0),
        [f] => (*f, *f),
        [f, .., l] => (*f, *l),
    };
    let h = (key.len() as u32).wrapping_mul(0x9E37_79B9)
        ^ u32::from(first).wrapping_mul(31)
        ^ u32::from(last);
    1 << (h.wrapping_mul(0x85EB_CA6B) >> 26)
}

/// Does the key contain a dot? Keys are short: eight bytes at a time in a
/// register beats a library call.
#[inline]
fn has_dot(key: &[u8]) -> bool {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let mut chunks = key.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        let x = u64::from_le_bytes(w) ^ (LO * u64::from(b'.'));
        if x.wrapping_sub(LO) & !x & HI != 0 {
            return true;
        }
    }
    chunks.remainder().contains(&b'.')
}

impl Paths {
    /// Registers one use of `path` as a field; returns its field id.
    pub(crate) fn add(&mut self, path: &str) -> u32 {
        let mut node = ROOT;
        for seg in path.as_bytes().split(|&c| c == b'.') {
            node = match self.nodes[node as usize].children.get(seg) {
                Some(&c) => c,
                None => {
                    let c = self.alloc();
                    let parent = &mut self.nodes[node as usize];
                    parent.children.insert(seg.into(), c);
                    parent.bloom |= key_bit(seg);
                    c
                }
            };
            self.nodes[node as usize].refs += 1;
        }
        let n = &mut self.nodes[node as usize];
        n.is_field = true;
        n.field_refs += 1;
        node
    }

    /// Drops one use of `path` registered by [`Paths::add`].
    pub(crate) fn remove(&mut self, path: &str) {
        let mut steps = Vec::new();
        let mut node = ROOT;
        for seg in path.as_bytes().split(|&c| c == b'.') {
            match self.nodes[node as usize].children.get(seg) {
                Some(&c) => {
                    steps.push((node, seg, c));
                    node = c;
                }
                None => return,
            }
        }
        let n = &mut self.nodes[node as usize];
        n.field_refs = n.field_refs.saturating_sub(1);
        n.is_field = n.field_refs > 0;
        for (parent, seg, child) in steps {
            let c = &mut self.nodes[child as usize];
            c.refs = c.refs.saturating_sub(1);
            if c.refs == 0 {
                // Everything below has no refs either: drop the subtree link.
                self.free_subtree(child);
                let p = &mut self.nodes[parent as usize];
                p.children.remove(seg);
                p.bloom = p.children.keys().fold(0, |b, k| b | key_bit(k));
                return;
            }
        }
    }

    fn free_subtree(&mut self, id: u32) {
        // Iterative: a path may have thousands of segments.
        let mut stack = vec![id];
        while let Some(id) = stack.pop() {
            let node = std::mem::take(&mut self.nodes[id as usize]);
            stack.extend(node.children.values());
            self.free.push(id);
        }
    }

    fn alloc(&mut self) -> u32 {
        match self.free.pop() {
            Some(id) => {
                self.nodes[id as usize] = Node::default();
                id
            }
            None => {
                self.nodes.push(Node::default());
                u32::try_from(self.nodes.len() - 1).unwrap_or(u32::MAX)
            }
        }
    }

    /// The node reached from `node` by event key `key` (which may contain
    /// dots), if any pattern reads it.
    #[inline]
    pub(crate) fn child(&self, node: u32, key: &[u8]) -> Option<u32> {
        if !has_dot(key) {
            return self.step(node, key);
        }
        key.split(|&c| c == b'.')
            .try_fold(node, |n, seg| self.step(n, seg))
    }

    #[inline]
    fn step(&self, node: u32, seg: &[u8]) -> Option<u32> {
        let n = &self.nodes[node as usize];
        if n.bloom & key_bit(seg) == 0 {
            return None;
        }
        n.children.get(seg).copied()
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
        assert!(!p.node(ROOT).has_children());
        // Freed nodes are reused.
        let h = p.add("x");
        assert!(usize::try_from(h).unwrap() < 4);
    }

    #[test]
    fn finds_dots() {
        for k in ["", "a", "abcdefgh", "abcdefghijklmnopq"] {
            assert!(!has_dot(k.as_bytes()), "{k}");
        }
        for k in [
            ".",
            "a.",
            "abcdefg.",
            "abcdefgh.",
            "abcdefghijklmnop.q",
            ".abcdefghijklmnop",
        ] {
            assert!(has_dot(k.as_bytes()), "{k}");
        }
    }

    #[test]
    fn empty_segments_and_many_dots() {
        let mut p = Paths::default();
        let f = p.add("a.");
        assert_eq!(walk(&p, &["a", ""]), Some(f));
        assert_eq!(walk(&p, &["a."]), Some(f));
        // Linear in the number of dots (this used to be quadratic).
        let dots = ".".repeat(5000);
        let g = p.add(&dots);
        assert_eq!(walk(&p, &[&dots]), Some(g));
        assert!(p.len() < 5100);
        p.remove(&dots);
        p.remove("a.");
        assert!(!p.node(ROOT).has_children());
    }
}

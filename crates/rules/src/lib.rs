//! Rules: match, conditions, per-item expansion, state, templates, self-tests.

//! The EventBridge event-pattern language: parse and validate patterns,
//! compile many of them into one [`Matcher`], and match raw JSON events
//! with AWS's semantics. Pure: no I/O, no async.
//!
//! ```
//! use trailwatch_pattern::{Matcher, Pattern};
//!
//! let p = Pattern::parse(r#"{"detail":{"eventName":[{"prefix":"Delete"}]}}"#).unwrap();
//! let mut m = Matcher::new();
//! m.add("deletes", &p);
//! let hits = m.matches(br#"{"detail":{"eventName":"DeleteBucket"}}"#).unwrap();
//! assert_eq!(hits, ["deletes"]);
//! ```
//!
//! The language as implemented is specified in `docs/patterns.md`.

pub mod cases;
mod cidr;
mod error;
mod eval;
mod fold;
mod hash;
mod index;
mod json;
mod matcher;
mod number;
mod paths;
mod pattern;
pub mod reference;
mod scan;
mod screen;
mod wildcard;

pub use error::{EventError, EventErrorKind, PatternError};
pub use matcher::{MAX_DEPTH_LIMIT, Matcher, SEARCH_BUDGET, Scratch};
pub use pattern::{MAX_OR_COMBINATIONS, Pattern};
pub use reference::DEFAULT_MAX_DEPTH;
pub use screen::{Known, Screen};

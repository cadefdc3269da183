//! The `trailwatch` binary.
fn main() {}

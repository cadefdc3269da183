//! The EventBridge event-pattern language.

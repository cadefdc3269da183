//! CloudTrail events in the EventBridge envelope.

//! Any bytes, gzip or not: decoding must not panic, every item must be counted, and every
//! event must be valid JSON whose `detail` is the record text.
//!
//! Run from `fuzz/`: `RUSTC_BOOTSTRAP=1 cargo fuzz run -s none decode_input`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trailwatch_event::{Item, Limits, decode_slice};

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        max_decompressed_bytes: 1 << 20,
        max_record_bytes: 64 << 10,
        max_depth: 32,
    };
    let (items, summary) = decode_slice(data, "fuzz", &limits);
    assert_eq!(items.len() as u64, summary.items());
    for item in &items {
        if let Item::Event(e) = item {
            let v: serde_json::Value = serde_json::from_str(e.json()).expect("envelope is JSON");
            let d: serde_json::Value = serde_json::from_str(e.detail()).expect("detail is JSON");
            assert_eq!(v["detail"], d);
        }
    }
});

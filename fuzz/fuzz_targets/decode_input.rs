//! Any bytes, gzip or not: decoding must not panic, every item must be counted, and every
//! event must be valid JSON whose `detail` is the record text. Screening changes nothing
//! but which events are built: each preview tells what its event's known fields tell, and
//! declined records are counted.
//!
//! Run from `fuzz/`: `RUSTC_BOOTSTRAP=1 cargo fuzz run -s none decode_input`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::cell::RefCell;
use std::sync::Arc;

use trailwatch_event::{Item, Limits, decode_screened, decode_slice};

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
    // Keeping every record: the same items, and each preview (made just before its event
    // is built) tells what the event's known fields tell.
    let last_preview = RefCell::new(None);
    let mut kept = Vec::new();
    let all = decode_screened(
        data,
        Arc::from("fuzz"),
        &limits,
        &mut |p| {
            let seen = format!("{:?}", (p.time, p.account, p.region, p.known));
            *last_preview.borrow_mut() = Some(seen);
            true
        },
        &mut |item| {
            if let (Item::Event(e), Some(preview)) = (&item, last_preview.borrow_mut().take()) {
                let m = e.meta();
                let known = e.known_fields();
                let built = format!(
                    "{:?}",
                    (m.time, m.account.as_str(), m.region.as_str(), known)
                );
                assert_eq!(preview, built);
            }
            kept.push(item);
        },
    );
    assert_eq!(all, summary);
    assert_eq!(kept, items);
    // Declining every other record: counted, not lost.
    let mut n = 0;
    let some = decode_screened(
        data,
        Arc::from("fuzz"),
        &limits,
        &mut |_| {
            n += 1;
            n % 2 == 0
        },
        &mut |_| {},
    );
    assert_eq!(some.records_seen(), summary.records_seen());
    assert_eq!(some.events + some.screened, summary.events);
});

//! Decodes the files named on the command line and prints a summary per file (a debugging aid).
use std::sync::Arc;
use trailwatch_event::{Item, Limits, decode};

fn main() {
    let mut total = trailwatch_event::DecodeSummary::default();
    let verbose = std::env::var_os("VERBOSE").is_some();
    for path in std::env::args().skip(1) {
        let Ok(f) = std::fs::File::open(&path) else {
            eprintln!("cannot open {path}");
            continue;
        };
        let s = decode(
            f,
            Arc::from(path.as_str()),
            &Limits::default(),
            &mut |item| match item {
                Item::Skipped(s) => println!("SKIP {s}"),
                Item::Object(o) => println!("OBJECT {} {:?}", o.url(), o.provenance.message_id),
                Item::Digest(d) => println!("DIGEST {}", d.provenance),
                Item::Event(e) => {
                    if verbose {
                        println!(
                            "EVENT {} {} {}",
                            e.provenance(),
                            e.meta().detail_type,
                            e.meta().source
                        )
                    }
                }
            },
        );
        total.add(&s);
    }
    println!("{total:?} records_seen={}", total.records_seen());
}

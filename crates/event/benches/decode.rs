//! Decoder throughput on a realistic corpus: MB/s of decompressed JSON and records/s.
//!
//! Corpus: `$TRAILWATCH_BENCH_CORPUS_DIR`, else one generated once under the target dir with
//! `../shared/tools/make-corpus --records 100000`, else the bench is skipped with a note.
//!
//! Run: `cargo bench -p trailwatch-event --bench decode`

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use trailwatch_event::{DecodeSummary, Item, Limits, decode};

fn corpus_dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("TRAILWATCH_BENCH_CORPUS_DIR") {
        return Some(PathBuf::from(d));
    }
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let tool = manifest.join("../../../shared/tools/make-corpus");
    if !tool.exists() {
        eprintln!(
            "note: no corpus (set TRAILWATCH_BENCH_CORPUS_DIR or provide ../shared); bench skipped"
        );
        return None;
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest.join("../../target"));
    let out = target.join("bench-corpus-100k");
    if !out.join(".complete").exists() {
        eprintln!("generating the bench corpus in {} ...", out.display());
        let _ = std::fs::remove_dir_all(&out);
        let status = std::process::Command::new(&tool)
            .args(["--records", "100000", "--out"])
            .arg(&out)
            .status();
        match status {
            Ok(s) if s.success() => {
                let _ = std::fs::write(out.join(".complete"), b"");
            }
            other => {
                eprintln!("note: make-corpus failed ({other:?}); bench skipped");
                return None;
            }
        }
    }
    Some(out)
}

fn gz_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            gz_files(&p, out);
        } else if p.to_string_lossy().ends_with(".json.gz") {
            out.push(p);
        }
    }
}

fn decode_all(inputs: &[Vec<u8>], limits: &Limits) -> DecodeSummary {
    let mut total = DecodeSummary::default();
    let origin: Arc<str> = Arc::from("bench");
    for input in inputs {
        let s = decode(&input[..], origin.clone(), limits, &mut |item| {
            if let Item::Event(e) = item {
                black_box(e.json().len());
            }
        });
        total.add(&s);
    }
    total
}

fn bench(c: &mut Criterion) {
    let Some(dir) = corpus_dir() else { return };
    let mut files = Vec::new();
    gz_files(&dir, &mut files);
    files.sort();
    if files.is_empty() {
        eprintln!(
            "note: no .json.gz files under {}; bench skipped",
            dir.display()
        );
        return;
    }
    let limits = Limits::default();
    let gzipped: Vec<Vec<u8>> = files.iter().filter_map(|f| std::fs::read(f).ok()).collect();
    // The same files decompressed, to measure the decoder without inflate.
    let plain: Vec<Vec<u8>> = gzipped
        .iter()
        .map(|g| {
            let mut out = Vec::new();
            let mut r = trailwatch_event::capped::gzip(&g[..], limits.max_decompressed_bytes);
            std::io::Read::read_to_end(&mut r, &mut out)
                .map(|_| out)
                .unwrap_or_default()
        })
        .collect();
    let summary = decode_all(&gzipped, &limits);
    let bytes = summary.bytes_decompressed;
    eprintln!(
        "corpus: {} files, {} records, {:.1} MB decompressed, {:.1} MB gzip",
        files.len(),
        summary.events,
        bytes as f64 / 1e6,
        summary.bytes_in as f64 / 1e6
    );

    let mut g = c.benchmark_group("decode");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(bytes));
    g.bench_function("plain_json_MBps", |b| {
        b.iter(|| decode_all(&plain, &limits))
    });
    g.bench_function("gzip_MBps", |b| b.iter(|| decode_all(&gzipped, &limits)));
    g.throughput(Throughput::Elements(summary.events));
    g.bench_function("plain_json_records_per_s", |b| {
        b.iter(|| decode_all(&plain, &limits))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

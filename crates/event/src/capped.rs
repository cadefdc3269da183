//! The size-capped readers: the only way this crate (and trailwatch) decompresses.
//!
//! `clippy.toml` bans the raw decompressor constructors (flate2's and libdeflate's) everywhere
//! else; this module is the single allowed call site. A gzip bomb ends in an [`io::Error`]
//! carrying [`CapExceeded`] instead of filling memory or disk.
//!
//! Two paths give the same bytes and the same errors:
//!
//! - **whole-buffer (libdeflate)**, for the common case: a file whose compressed size is at
//!   most [`WHOLE_MAX_COMPRESSED`] and whose gzip trailer says it inflates to at most
//!   [`WHOLE_MAX_DECOMPRESSED`] and at most the cap, with one member. It is inflated in one
//!   call, about twice as fast as streaming. It is taken only when it succeeds in full;
//!   anything else (a second member, a lying ISIZE, corrupt or truncated data, a header
//!   CRC) goes to the streaming path over the same bytes, so every error is still the
//!   streaming path's error, at the same position.
//! - **streaming (flate2 with zlib-rs)**: everything else, so a 1 GB file never sits whole in
//!   memory, and multi-member files and the cap behave as they always did.

use std::fmt;
use std::io::{self, BufRead, Read};

/// The gzip magic bytes.
pub const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// The error inside the [`io::Error`] a capped reader returns once the cap is passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CapExceeded {
    /// The cap, in bytes.
    pub limit: u64,
}

impl fmt::Display for CapExceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "decompressed data exceeds the cap of {} bytes",
            self.limit
        )
    }
}

impl std::error::Error for CapExceeded {}

/// Whether an I/O error is a capped reader's [`CapExceeded`].
pub fn is_cap_exceeded(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|inner| inner.is::<CapExceeded>())
}

/// A reader that yields at most `limit` bytes and fails if the inner reader has more.
#[derive(Debug)]
pub struct CappedReader<R> {
    inner: R,
    limit: u64,
    read: u64,
}

impl<R: Read> CappedReader<R> {
    /// Caps `inner` at `limit` bytes.
    pub fn new(inner: R, limit: u64) -> Self {
        CappedReader {
            inner,
            limit,
            read: 0,
        }
    }

    /// Bytes read through the cap so far.
    pub fn bytes_read(&self) -> u64 {
        self.read
    }

    /// The wrapped reader.
    pub fn into_inner(self) -> R {
        self.inner
    }
}

impl<R: Read> Read for CappedReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let room = self.limit - self.read;
        if room == 0 {
            // At the cap: fine if the stream also ends here, a bomb if it does not.
            let mut probe = [0u8; 1];
            return match self.inner.read(&mut probe)? {
                0 => Ok(0),
                _ => Err(io::Error::other(CapExceeded { limit: self.limit })),
            };
        }
        let want = buf.len().min(usize::try_from(room).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        self.read += n as u64;
        Ok(n)
    }
}

/// Decompresses gzip (all members: CloudTrail files may hold several), capped at `limit`
/// decompressed bytes.
pub fn gzip<R: BufRead>(
    compressed: R,
    limit: u64,
) -> CappedReader<flate2::bufread::MultiGzDecoder<R>> {
    // The one decompressor construction in trailwatch; its output is capped right here.
    #[allow(clippy::disallowed_methods)]
    let decoder = flate2::bufread::MultiGzDecoder::new(compressed);
    CappedReader::new(decoder, limit)
}

/// Largest compressed input inflated in one piece (larger inputs are streamed).
pub const WHOLE_MAX_COMPRESSED: usize = 16 << 20;
/// Largest decompressed size inflated in one piece (larger outputs are streamed).
pub const WHOLE_MAX_DECOMPRESSED: u64 = 64 << 20;

/// gzip header flag: a CRC16 of the header follows it (libdeflate skips it unchecked, so such
/// files are streamed, where it is checked).
const FHCRC: u8 = 0x02;

/// Inflates a whole single-member gzip file with libdeflate, when that is sure to give exactly
/// what the streaming path gives: `None` means "stream it instead".
///
/// Sure means: at most [`WHOLE_MAX_COMPRESSED`] in, a trailer ISIZE within the cap and
/// [`WHOLE_MAX_DECOMPRESSED`], no header CRC, no second member header anywhere after the
/// first byte (so there is one member), libdeflate succeeds (it checks the member's CRC32 and
/// ISIZE) filling exactly ISIZE bytes, and the CRC32 and ISIZE of what came out are the
/// file's last eight bytes (so the one member ends where the file ends: no trailing bytes).
pub fn inflate_whole(compressed: &[u8], limit: u64) -> Option<Pooled> {
    let n = compressed.len();
    if !(18..=WHOLE_MAX_COMPRESSED).contains(&n)
        || compressed[..3] != [0x1f, 0x8b, 0x08]
        || compressed[3] & FHCRC != 0
    {
        return None;
    }
    let trailer = |at: usize| {
        let mut w = [0u8; 4];
        w.copy_from_slice(&compressed[at..at + 4]);
        u32::from_le_bytes(w)
    };
    let (crc, isize) = (trailer(n - 8), trailer(n - 4));
    if u64::from(isize) > limit.min(WHOLE_MAX_DECOMPRESSED) {
        return None;
    }
    // Any later gzip header might start a second member: stream those (rare: about one
    // file in 300 of 50 KB has these three bytes by chance).
    if memchr::memmem::find(&compressed[1..], &[0x1f, 0x8b, 0x08]).is_some() {
        return None;
    }
    // Every byte is written: success below means libdeflate filled exactly `isize`.
    let mut out = Pooled::sized(isize as usize);
    let got = WHOLE.with(|d| {
        #[allow(clippy::disallowed_methods)] // the one libdeflate call site, capped above
        d.borrow_mut().gzip_decompress(compressed, &mut out.0)
    });
    match got {
        Ok(len) if len == out.len() && libdeflater::crc32(&out) == crc => Some(out),
        _ => None,
    }
}

/// Buffers kept per thread for reuse, and the largest capacity kept.
const POOL_BUFFERS: usize = 4;
const POOL_MAX_CAPACITY: usize = 16 << 20;

thread_local! {
    /// Buffers of finished files: a new file reuses memory already mapped instead of
    /// faulting in (and having the kernel clear) fresh pages.
    static POOL: std::cell::RefCell<Vec<Vec<u8>>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// A byte buffer that goes back to its thread's pool when dropped.
#[derive(Debug)]
pub struct Pooled(Vec<u8>);

impl Pooled {
    /// An empty buffer, from the pool when it has one: the one with the fewest bytes
    /// written, so longer ones stay for [`Pooled::sized`].
    fn take() -> Pooled {
        let mut v = Pooled::pop(|v| std::cmp::Reverse(v.len()));
        v.clear();
        Pooled(v)
    }

    /// `len` bytes to be overwritten: a pooled buffer keeps its old bytes and only growth
    /// is zeroed (clearing every file's whole output first was a pass of its own). The
    /// pooled buffer taken is the shortest already as long as `len`, else the longest:
    /// taking whichever came first zeroed most of a file's length again for every file.
    pub(crate) fn sized(len: usize) -> Pooled {
        let mut v = Pooled::pop(|v| {
            let fits = v.len() >= len;
            (fits, if fits { usize::MAX - v.len() } else { v.len() })
        });
        v.truncate(len);
        v.resize(len, 0);
        Pooled(v)
    }

    /// The pooled buffer that `rank` ranks highest, or a new empty one.
    fn pop<K: Ord>(rank: impl Fn(&Vec<u8>) -> K) -> Vec<u8> {
        POOL.with(|p| {
            let mut p = p.borrow_mut();
            let best = (0..p.len()).max_by_key(|&i| rank(&p[i]))?;
            Some(p.swap_remove(best))
        })
        .unwrap_or_default()
    }
}

impl std::ops::DerefMut for Pooled {
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut self.0
    }
}

impl std::ops::Deref for Pooled {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl AsRef<[u8]> for Pooled {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        let v = std::mem::take(&mut self.0);
        if v.capacity() == 0 || v.capacity() > POOL_MAX_CAPACITY {
            return;
        }
        // `try_with`: a buffer dropped while the thread exits is simply freed.
        let _ = POOL.try_with(|p| {
            let mut p = p.borrow_mut();
            if p.len() < POOL_BUFFERS {
                p.push(v);
            }
        });
    }
}

thread_local! {
    /// One libdeflate decompressor per thread (it holds about 10 KB of tables).
    static WHOLE: std::cell::RefCell<libdeflater::Decompressor> = std::cell::RefCell::new({
        #[allow(clippy::disallowed_methods)] // used only by `inflate_whole`
        libdeflater::Decompressor::new()
    });
}

/// Bytes already read, then the read error that stopped reading (once), then the rest: so a
/// reader that failed while being read ahead fails again at the same byte.
struct Replay<R> {
    head: io::Cursor<Vec<u8>>,
    error: Option<io::Error>,
    rest: R,
}

impl<R: Read> Read for Replay<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.head.read(buf)?;
        if n > 0 || buf.is_empty() {
            return Ok(n);
        }
        match self.error.take() {
            Some(e) => Err(e),
            None => self.rest.read(buf),
        }
    }
}

/// Opens `input` for reading whether or not it is gzip, judged by the magic bytes (never the
/// file name), with the decompressed (or plain) size capped at `limit`.
pub fn maybe_gzip<'a, R: Read + 'a>(input: R, limit: u64) -> io::Result<Box<dyn Read + 'a>> {
    Ok(match open(input, limit)? {
        Opened::Whole(plain) => Box::new(io::Cursor::new(plain)),
        Opened::Stream(reader) => reader,
    })
}

/// An input opened by [`open`].
pub enum Opened<'a> {
    /// A small gzip file inflated in one piece (within the cap): its bytes, to be read
    /// in place rather than copied out through a reader.
    Whole(Pooled),
    /// Anything else, read as a stream (capped).
    Stream(Box<dyn Read + 'a>),
}

/// As [`maybe_gzip`], handing over a small gzip file's inflated bytes whole.
pub fn open<'a, R: Read + 'a>(input: R, limit: u64) -> io::Result<Opened<'a>> {
    let mut input = input;
    let mut head = [0u8; 2];
    let mut got = 0;
    while got < 2 {
        match input.read(&mut head[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    if got == 2 && head == GZIP_MAGIC {
        // Read ahead up to the whole-buffer limit; small files are inflated in one piece.
        let mut compressed = Pooled::take();
        compressed.0.extend_from_slice(&head);
        let read = (&mut input)
            .take(WHOLE_MAX_COMPRESSED as u64 + 1 - 2)
            .read_to_end(&mut compressed.0);
        let error = read.err();
        if error.is_none()
            && compressed.len() <= WHOLE_MAX_COMPRESSED
            && let Some(plain) = inflate_whole(&compressed, limit)
        {
            // (`inflate_whole` checked the size against `limit`.)
            return Ok(Opened::Whole(plain));
        }
        let replay = Replay {
            head: io::Cursor::new(std::mem::take(&mut compressed.0)),
            error,
            rest: input,
        };
        Ok(Opened::Stream(Box::new(gzip(
            io::BufReader::with_capacity(64 * 1024, replay),
            limit,
        ))))
    } else {
        let rejoined = io::Cursor::new(head[..got].to_vec()).chain(input);
        Ok(Opened::Stream(Box::new(CappedReader::new(rejoined, limit))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::Compression;
    use flate2::write::GzEncoder;
    use std::io::Write;

    pub(crate) fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), Compression::best());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn read_all(r: &mut dyn Read) -> (Vec<u8>, Option<io::Error>) {
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match r.read(&mut buf) {
                Ok(0) => return (out, None),
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(e) => return (out, Some(e)),
            }
        }
    }

    #[test]
    fn plain_and_gzip_are_told_by_magic_bytes() {
        let data = b"{\"Records\":[]}";
        for input in [data.to_vec(), gz(data)] {
            let mut r = maybe_gzip(&input[..], 1024).unwrap();
            let (out, err) = read_all(&mut r);
            assert!(err.is_none());
            assert_eq!(out, data);
        }
    }

    #[test]
    fn multi_member_gzip_is_read_whole() {
        let mut two = gz(b"[1,");
        two.extend(gz(b"2]"));
        let mut r = maybe_gzip(&two[..], 1024).unwrap();
        assert_eq!(read_all(&mut r).0, b"[1,2]");
    }

    #[test]
    fn gzip_bomb_stops_at_the_cap() {
        let bomb = gz(&vec![b' '; 10 << 20]);
        assert!(bomb.len() < 64 * 1024);
        let mut r = maybe_gzip(&bomb[..], 1 << 20).unwrap();
        let (out, err) = read_all(&mut r);
        assert_eq!(out.len(), 1 << 20);
        assert!(is_cap_exceeded(&err.expect("cap error")));
    }

    #[test]
    fn exactly_at_the_cap_is_fine() {
        let data = vec![b'x'; 1000];
        let packed = gz(&data);
        let mut r = maybe_gzip(&packed[..], 1000).unwrap();
        let (out, err) = read_all(&mut r);
        assert!(err.is_none());
        assert_eq!(out.len(), 1000);
    }

    /// Everything a reader gives, and how it ends: the bytes, then `None` or the error's kind
    /// and text (whether it is the cap, too).
    fn outcome(r: &mut dyn Read) -> (Vec<u8>, Option<(io::ErrorKind, String, bool)>) {
        let (out, err) = read_all(r);
        let err = err.map(|e| (e.kind(), e.to_string(), is_cap_exceeded(&e)));
        (out, err)
    }

    /// The whole-buffer path (through `maybe_gzip`) against the streaming path alone, on the
    /// same bytes and cap.
    fn same_as_streaming(input: &[u8], limit: u64) {
        let whole = outcome(&mut maybe_gzip(input, limit).unwrap());
        let streamed = outcome(&mut gzip(input, limit));
        assert_eq!(
            whole,
            streamed,
            "input of {} bytes, cap {limit}",
            input.len()
        );
    }

    fn records(n: usize) -> Vec<u8> {
        let mut s = String::from("{\"Records\":[");
        for i in 0..n {
            if i > 0 {
                s.push(',');
            }
            s.push_str(&format!(
                "{{\"eventID\":\"e{i}\",\"eventName\":\"Get{}\"}}",
                i * 7919 % 113
            ));
        }
        s.push_str("]}");
        s.into_bytes()
    }

    /// A gzip member with a header CRC16 (FHCRC), as `gzip` itself never writes it.
    fn gz_with_header_crc(data: &[u8]) -> Vec<u8> {
        let plain = gz(data);
        let mut out = plain[..10].to_vec();
        out[3] |= FHCRC;
        let crc = libdeflater::crc32(&out) as u16;
        out.extend_from_slice(&crc.to_le_bytes());
        out.extend_from_slice(&plain[10..]);
        out
    }

    #[test]
    fn a_finished_buffer_is_reused_by_the_next_file() {
        let data = records(50);
        let first = inflate_whole(&gz(&data), 1 << 30).unwrap();
        let at = first.as_ptr();
        drop(first);
        let second = inflate_whole(&gz(&data[..data.len() / 2]), 1 << 30).unwrap();
        assert_eq!(second.as_ptr(), at);
        assert_eq!(&second[..], &data[..data.len() / 2]);
    }

    #[test]
    fn whole_buffer_path_is_taken_for_one_member_only() {
        let data = records(500);
        assert_eq!(
            inflate_whole(&gz(&data), 1 << 30).as_deref(),
            Some(&data[..])
        );
        let mut two = gz(&data[..100]);
        two.extend(gz(&data[100..]));
        assert_eq!(inflate_whole(&two, 1 << 30).as_deref(), None, "two members");
        let mut twice = gz(&data);
        twice.extend(gz(&data));
        assert_eq!(
            inflate_whole(&twice, 1 << 30).as_deref(),
            None,
            "the same member twice"
        );
        assert_eq!(
            inflate_whole(&gz(&data), 100).as_deref(),
            None,
            "over the cap"
        );
        assert_eq!(
            inflate_whole(&gz_with_header_crc(&data), 1 << 30).as_deref(),
            None,
            "header CRC"
        );
        let mut lying = gz(&data);
        let n = lying.len();
        lying[n - 4..].copy_from_slice(&10u32.to_le_bytes());
        assert_eq!(
            inflate_whole(&lying, 1 << 30).as_deref(),
            None,
            "ISIZE says less"
        );
        lying[n - 4..].copy_from_slice(&(data.len() as u32 + 10).to_le_bytes());
        assert_eq!(
            inflate_whole(&lying, 1 << 30).as_deref(),
            None,
            "ISIZE says more"
        );
        let mut tail = gz(&data);
        tail.extend_from_slice(b"garbage!");
        assert_eq!(
            inflate_whole(&tail, 1 << 30).as_deref(),
            None,
            "trailing bytes"
        );
    }

    /// Table test: every kind of input gives the same bytes and the same error (kind, text,
    /// cap or not) through `maybe_gzip` as through the streaming decoder alone.
    #[test]
    fn whole_buffer_and_streaming_agree_on_bytes_and_errors() {
        let data = records(2000);
        let one = gz(&data);
        let n = one.len();
        let mut cases: Vec<(&str, Vec<u8>, u64)> = vec![
            ("one member", one.clone(), 1 << 30),
            ("empty member", gz(b""), 1 << 30),
            ("exactly at the cap", one.clone(), data.len() as u64),
            ("one byte over the cap", one.clone(), data.len() as u64 - 1),
            ("bomb", gz(&vec![b' '; 4 << 20]), 1 << 20),
            ("header CRC", gz_with_header_crc(&data), 1 << 30),
        ];
        let mut two = gz(&data[..5000]);
        two.extend(gz(&data[5000..]));
        cases.push(("two members", two.clone(), 1 << 30));
        cases.push(("two members over the cap", two, data.len() as u64 - 10));
        let mut twice = one.clone();
        twice.extend_from_slice(&one);
        cases.push(("the same member twice", twice, 1 << 30));
        for (what, isize) in [
            ("ISIZE says less", 10u32),
            ("ISIZE says more", data.len() as u32 + 1),
        ] {
            let mut lying = one.clone();
            lying[n - 4..].copy_from_slice(&isize.to_le_bytes());
            cases.push((what, lying, 1 << 30));
        }
        let mut crc = one.clone();
        crc[n - 8] ^= 1;
        cases.push(("bad CRC", crc, 1 << 30));
        let mut tail = one.clone();
        tail.extend_from_slice(b"garbage after the member");
        cases.push(("trailing garbage", tail, 1 << 30));
        let mut zeros = one.clone();
        zeros.extend_from_slice(&[0; 16]);
        cases.push(("trailing zeros", zeros, 1 << 30));
        for cut in [3, 10, 11, n / 2, n - 9, n - 8, n - 4, n - 1] {
            cases.push(("truncated", one[..cut].to_vec(), 1 << 30));
        }
        for at in [10, n / 3, n / 2, n - 20] {
            let mut bad = one.clone();
            bad[at] ^= 0x55;
            cases.push(("corrupt byte", bad, 1 << 30));
        }
        for (what, input, limit) in &cases {
            eprintln!("{what}");
            same_as_streaming(input, *limit);
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(200))]
        /// Random records, split into random members, then maybe cut short or damaged, under
        /// a random cap: both paths agree.
        #[test]
        fn whole_buffer_and_streaming_agree_on_random_input(
            n in 0usize..300,
            splits in proptest::collection::vec(0usize..20_000, 0..3),
            cut in proptest::option::of(0usize..20_000),
            flip in proptest::option::of((0usize..20_000, 1u8..=255)),
            limit in proptest::option::of(0u64..20_000),
        ) {
            let data = records(n);
            let mut bounds: Vec<usize> = splits.iter().map(|s| s % (data.len() + 1)).collect();
            bounds.sort_unstable();
            let mut input = Vec::new();
            let mut start = 0;
            for b in bounds.into_iter().chain(std::iter::once(data.len())) {
                input.extend(gz(&data[start..b]));
                start = b;
            }
            if let Some(c) = cut {
                input.truncate(c % (input.len() + 1));
            }
            if let Some((at, x)) = flip
                && !input.is_empty()
            {
                let at = at % input.len();
                input[at] ^= x;
            }
            if input.len() >= 2 && input[..2] == GZIP_MAGIC {
                same_as_streaming(&input, limit.unwrap_or(1 << 30));
            }
        }
    }

    /// A file's output buffer goes back to the pool and the next file's output takes it
    /// again, bytes and all, even when a compressed-input buffer went back after it.
    #[test]
    fn pooled_buffers_are_taken_by_fit() {
        // (A fresh thread: its own, empty pool.)
        std::thread::spawn(|| {
            let mut out = Pooled::sized(1000);
            out.fill(7);
            let mut compressed = Pooled::take();
            compressed.0.extend_from_slice(&[1; 10]);
            drop(out);
            drop(compressed);
            let again = Pooled::sized(900);
            assert_eq!(again.len(), 900);
            assert!(
                again.iter().all(|&b| b == 7),
                "the long buffer, not re-zeroed"
            );
            let small = Pooled::take();
            assert!(small.0.capacity() < 1000, "take leaves the long buffers");
            drop(small);
            // Longer than any pooled buffer: the longest grows, only its growth zeroed.
            drop(again);
            let grown = Pooled::sized(1200);
            assert!(grown[..900].iter().all(|&b| b == 7));
            assert!(grown[900..].iter().all(|&b| b == 0));
        })
        .join()
        .unwrap();
    }
}

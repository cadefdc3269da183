//! The size-capped readers: the only way this crate (and trailwatch) decompresses.
//!
//! `clippy.toml` bans the uncapped flate2 constructors; [`gzip`] is the single allowed call
//! site. A gzip bomb ends in an [`io::Error`] carrying [`CapExceeded`] instead of filling memory
//! or disk.

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

/// Opens `input` for reading whether or not it is gzip, judged by the magic bytes (never the
/// file name), with the decompressed (or plain) size capped at `limit`.
pub fn maybe_gzip<'a, R: Read + 'a>(input: R, limit: u64) -> io::Result<Box<dyn Read + 'a>> {
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
    let rejoined = io::Cursor::new(head[..got].to_vec()).chain(input);
    if got == 2 && head == GZIP_MAGIC {
        Ok(Box::new(gzip(
            io::BufReader::with_capacity(64 * 1024, rejoined),
            limit,
        )))
    } else {
        Ok(Box::new(CappedReader::new(rejoined, limit)))
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
}

//! The relaxed body hash (RFC 6376 3.4.4), streamed: canonicalised as it is
//! hashed, with no copy of the body, and begun once per issue for copies that
//! differ only in each reader's spliced fields.

use std::ops::Range;

use sha2::{Digest, Sha256};

/// The relaxed body hash of the copies of one body that differ only in spliced
/// stretches (a reader's links and address): the hash over everything before
/// the first splice is taken once, and the shared stretches between splices are
/// canonicalised once; a copy hashes from a clone of that state.
#[derive(Debug, Clone)]
pub struct SplicedBody {
    /// The body before the first splice, and the hash state after it.
    first: String,
    prefix: BodyHash,
    /// The shared stretch after each splice.
    shared: Vec<SharedStretch>,
}

impl SplicedBody {
    /// `body` is one copy and `splices` where its own stretches are (in order,
    /// not overlapping); every other byte is shared by all copies.
    pub fn new(body: &str, splices: &[Range<usize>]) -> SplicedBody {
        let mut bounds = Vec::with_capacity(splices.len() + 1);
        let mut at = 0;
        for s in splices {
            bounds.push(at..s.start);
            at = s.end;
        }
        bounds.push(at..body.len());
        let first = body[bounds[0].clone()].to_string();
        let mut prefix = BodyHash::default();
        prefix.update(first.as_bytes());
        SplicedBody {
            first,
            prefix,
            shared: bounds[1..]
                .iter()
                .map(|b| SharedStretch::new(&body[b.clone()]))
                .collect(),
        }
    }

    /// The relaxed body hash of a copy laid out like the one given to
    /// [`SplicedBody::new`]: the same shared stretches around `splices`. `None`
    /// when it is not, and then the caller hashes the copy whole.
    pub fn hash(&self, body: &[u8], splices: &[Range<usize>]) -> Option<[u8; 32]> {
        if splices.len() != self.shared.len() || !body.starts_with(self.first.as_bytes()) {
            return None;
        }
        let mut hash = self.prefix.clone();
        let mut at = self.first.len();
        for (splice, shared) in splices.iter().zip(&self.shared) {
            let end = splice.end + shared.raw.len();
            if splice.start != at || body.get(splice.end..end) != Some(shared.raw.as_bytes()) {
                return None;
            }
            hash.update(&body[splice.clone()]);
            hash.shared(shared);
            at = end;
        }
        (at == body.len()).then(|| hash.finish())
    }
}

/// A stretch the same in every copy, canonicalised once where it can be: its
/// whole lines. The rest of the line it starts on and the start of the line it
/// ends on depend on what is spliced around them, so they stay raw.
#[derive(Debug, Clone)]
struct SharedStretch {
    raw: String,
    /// The raw bytes up to the first line end (or all of them), and from after
    /// the last line end.
    head: usize,
    tail: usize,
    /// The whole lines between, canonical as from the start of a line, and the
    /// empty lines at their end, which count only if something follows.
    lines: Vec<u8>,
    trailing_empty: usize,
}

impl SharedStretch {
    fn new(raw: &str) -> SharedStretch {
        let bytes = raw.as_bytes();
        let (head, tail) = match (memchr::memchr(b'\n', bytes), memchr::memrchr(b'\n', bytes)) {
            (Some(first), Some(last)) => (first + 1, last + 1),
            _ => (bytes.len(), bytes.len()),
        };
        let mut lines = Vec::with_capacity(tail - head);
        let mut canon = Relaxed::default();
        canon.feed(&bytes[head..tail], &mut lines);
        SharedStretch {
            raw: raw.to_string(),
            head,
            tail,
            lines,
            trailing_empty: canon.empty_lines,
        }
    }
}

/// RFC 6376 3.4.4, fed in pieces: the SHA-256 of the relaxed body.
#[derive(Clone, Default)]
pub struct BodyHash {
    sha: Sha256,
    canon: Relaxed,
    /// Canonical output not yet hashed: one `update` per few KB, not per word.
    pending: Vec<u8>,
}

impl std::fmt::Debug for BodyHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BodyHash")
    }
}

impl BodyHash {
    pub fn update(&mut self, bytes: &[u8]) {
        self.canon.feed(bytes, &mut self.pending);
        if self.pending.len() >= 4096 {
            self.sha.update(&self.pending);
            self.pending.clear();
        }
    }

    fn shared(&mut self, stretch: &SharedStretch) {
        let raw = stretch.raw.as_bytes();
        self.update(&raw[..stretch.head]);
        if stretch.lines.is_empty() {
            self.canon.empty_lines += stretch.trailing_empty;
        } else {
            // The head ended a line: the whole lines start a line of their own.
            self.canon.open_line(&mut self.pending);
            self.sha.update(&self.pending);
            self.pending.clear();
            self.sha.update(&stretch.lines);
            self.canon.content = false;
            self.canon.empty_lines = stretch.trailing_empty;
        }
        self.update(&raw[stretch.tail..]);
    }

    pub fn finish(mut self) -> [u8; 32] {
        self.canon.finish(&mut self.pending);
        self.sha.update(&self.pending);
        self.sha.finalize().into()
    }
}

/// Where relaxed body canonicalisation stands between two pieces of a body.
#[derive(Debug, Clone, Copy, Default)]
struct Relaxed {
    /// Empty lines (or lines of white space) seen and not yet written: they
    /// count only if a line with content follows.
    empty_lines: usize,
    /// The current line has content written.
    content: bool,
    /// White space seen after the last content: one space if content follows.
    space: bool,
    /// A CR seen last: a line end if LF follows, content if anything else does.
    cr: bool,
}

impl Relaxed {
    fn feed(&mut self, bytes: &[u8], out: &mut Vec<u8>) {
        let mut run: Option<usize> = None;
        for (i, &b) in bytes.iter().enumerate() {
            if !matches!(b, b' ' | b'\t' | b'\r' | b'\n') {
                if run.is_none() {
                    self.open_content(out);
                    run = Some(i);
                }
                continue;
            }
            if let Some(start) = run.take() {
                out.extend_from_slice(&bytes[start..i]);
            }
            match b {
                b'\n' => {
                    if self.content {
                        out.extend_from_slice(b"\r\n");
                    } else {
                        self.empty_lines += 1;
                    }
                    self.content = false;
                    self.space = false;
                    self.cr = false;
                }
                b'\r' => {
                    if self.cr {
                        self.open_content(out);
                    }
                    self.cr = true;
                }
                _ => {
                    if self.cr {
                        self.open_content(out);
                    }
                    self.space = true;
                }
            }
        }
        if let Some(start) = run {
            out.extend_from_slice(&bytes[start..]);
        }
    }

    /// Writes the empty lines a line with content makes count.
    fn open_line(&mut self, out: &mut Vec<u8>) {
        if !self.content {
            for _ in 0..self.empty_lines {
                out.extend_from_slice(b"\r\n");
            }
            self.empty_lines = 0;
            self.content = true;
        }
    }

    /// Writes what content makes count: the empty lines before, one space for a
    /// run of white space, a CR that did not end the line.
    fn open_content(&mut self, out: &mut Vec<u8>) {
        self.open_line(out);
        if self.space {
            out.push(b' ');
            self.space = false;
        }
        if self.cr {
            out.push(b'\r');
            self.cr = false;
        }
    }

    /// The end of the body: no empty lines at the end, a CR there dropped, and
    /// a last line with content ended by CRLF.
    fn finish(&mut self, out: &mut Vec<u8>) {
        if self.content {
            out.extend_from_slice(b"\r\n");
        }
        *self = Relaxed::default();
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::delivery::dkim::relaxed_header;

    pub(crate) fn relaxed_body(body: &[u8]) -> Vec<u8> {
        let (mut out, mut canon) = (Vec::new(), Relaxed::default());
        canon.feed(body, &mut out);
        canon.finish(&mut out);
        out
    }

    /// RFC 6376 3.4.4 read a line at a time, the way it is written down: what
    /// the canonicalisation fed in pieces must agree with.
    fn line_by_line(body: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut blank_run = 0;
        for line in body.split(|b| *b == b'\n') {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let mut canon = Vec::new();
            let mut in_space = false;
            for &b in line {
                if b == b' ' || b == b'\t' {
                    in_space = true;
                } else {
                    if in_space {
                        canon.push(b' ');
                        in_space = false;
                    }
                    canon.push(b);
                }
            }
            if canon.is_empty() {
                blank_run += 1;
                continue;
            }
            out.extend(std::iter::repeat_n(b"\r\n", blank_run).flatten());
            blank_run = 0;
            out.extend_from_slice(&canon);
            out.extend_from_slice(b"\r\n");
        }
        out
    }

    pub(crate) fn whole(body: &[u8]) -> [u8; 32] {
        let mut hash = BodyHash::default();
        hash.update(body);
        hash.finish()
    }

    /// Pieces that meet at splice points: white space runs, line ends of every
    /// kind, empty lines, Korean text.
    pub(crate) fn piece() -> impl Strategy<Value = String> {
        prop_oneof![
            Just(" ".to_string()),
            Just("\t".to_string()),
            Just("  \t ".to_string()),
            Just("\r\n".to_string()),
            Just("\n".to_string()),
            Just("\r".to_string()),
            Just("\r\n\r\n".to_string()),
            Just(" \r\n".to_string()),
            Just("\t\r\n \r\n\r\n".to_string()),
            Just("가".to_string()),
            Just("한국어 문장이 이어진다.".to_string()),
            Just("구독 해지: ".to_string()),
            Just("x".to_string()),
            Just("<p>".to_string()),
            "[a-z가-힣 \t\r\n]{0,12}",
        ]
    }

    pub(crate) fn text(max: usize) -> impl Strategy<Value = String> {
        prop::collection::vec(piece(), 0..max).prop_map(|p| p.concat())
    }

    /// Shared stretches with a reader's values between them, and where those went.
    fn spliced(shared: &[String], values: &[String]) -> (String, Vec<Range<usize>>) {
        let mut body = shared[0].clone();
        let mut splices = Vec::new();
        for (value, next) in values.iter().zip(&shared[1..]) {
            splices.push(body.len()..body.len() + value.len());
            body.push_str(value);
            body.push_str(next);
        }
        (body, splices)
    }

    #[test]
    fn relaxed_canonicalization_follows_rfc_6376() {
        // RFC 6376 3.4.5's example.
        assert_eq!(relaxed_header("A: X\r\n"), "a:X\r\n");
        assert_eq!(relaxed_header("B : Y\t\r\n\tZ  \r\n"), "b:Y Z\r\n");
        assert_eq!(relaxed_body(b" C \r\nD \t E\r\n\r\n\r\n"), b" C\r\nD E\r\n");
        assert_eq!(relaxed_body(b""), b"");
        assert_eq!(relaxed_body(b"a\r b \r\r\n\n"), b"a\r b \r\r\n");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn canonicalisation_in_pieces_is_the_rfc_reading(body in text(16), cut in any::<prop::sample::Index>()) {
            let body = body.as_bytes();
            prop_assert_eq!(relaxed_body(body), line_by_line(body));
            let cut = cut.index(body.len() + 1);
            let mut hash = BodyHash::default();
            hash.update(&body[..cut]);
            hash.update(&body[cut..]);
            prop_assert_eq!(hash.finish(), <[u8; 32]>::from(Sha256::digest(line_by_line(body))));
        }

        #[test]
        fn a_spliced_body_hashes_as_the_whole_copy(
            (shared, first, second) in (1usize..6).prop_flat_map(|n| (
                prop::collection::vec(text(8), n),
                prop::collection::vec(text(3), n - 1),
                prop::collection::vec(text(3), n - 1),
            ))
        ) {
            let (body, splices) = spliced(&shared, &first);
            let begun = SplicedBody::new(&body, &splices);
            let (copy, splices) = spliced(&shared, &second);
            let want = <[u8; 32]>::from(Sha256::digest(line_by_line(copy.as_bytes())));
            prop_assert_eq!(begun.hash(copy.as_bytes(), &splices), Some(want));
            prop_assert_eq!(whole(copy.as_bytes()), want);
        }
    }

    #[test]
    fn a_copy_laid_out_otherwise_is_hashed_whole() {
        let shared = ["안녕 \r\n".to_string(), " 끝\r\n".to_string()];
        let (body, splices) = spliced(&shared, &["a".into()]);
        let begun = SplicedBody::new(&body, &splices);
        // One splice each, in the wrong place or beside a changed shared part.
        let moved = std::slice::from_ref(&(8..9));
        let changed = std::slice::from_ref(&(9..10));
        assert_eq!(begun.hash("other \r\nb 끝\r\n".as_bytes(), moved), None);
        assert_eq!(begun.hash("안녕 \r\nb 끝!\r\n".as_bytes(), changed), None);
        assert_eq!(begun.hash(body.as_bytes(), &[]), None);
    }
}

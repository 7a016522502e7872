//! Newline-terminated UTF-8 text lines.
//!
//! The codec and its wire format are documented on [`Lines`] (this module is private, so its
//! own docs are not rendered).

use std::io::{self, BufRead, Read, Write};

/// The default [`Lines::max_line_length`]: 64 KiB.
const DEFAULT_MAX_LINE_LENGTH: usize = 64 * 1024;

/// Lines of UTF-8 text, each ended by `\n`; a `\r` just before the `\n` is accepted and
/// dropped when reading.
///
/// A message is a `String` without its terminator: [`write`](super::Codec::write) appends
/// `\n` and [`read`](super::Codec::read) removes `\n` or `\r\n`.
///
/// # Wire format
///
/// What `write` sends for the message `"hi"`:
///
/// ```text
/// +--- text: UTF-8 ---+-- \n --+
/// | 0x68 0x69         |  0x0a  |
/// +-------------------+--------+
///   'h'  'i'
/// ```
///
/// What `read` also accepts as the same message (the usual terminator of telnet and of many
/// text protocols):
///
/// ```text
/// +--- text: UTF-8 ---+-- \r --+-- \n --+
/// | 0x68 0x69         |  0x0d  |  0x0a  |
/// +-------------------+--------+--------+
/// ```
///
/// When the stream ends after some text but before its `\n`, that text is returned as a last
/// line, the way [`BufRead::lines`] does; it is kept exactly as received (a final `\r` with no
/// `\n` after it is part of the text).
///
/// # Limits
///
/// A line's text (its terminator not counted) must be at most
/// [`max_line_length`](Lines::max_line_length) bytes (defaults to 64 KiB). Reading stops with
/// [`io::ErrorKind::InvalidData`] as soon as a line is known to be longer, without waiting for
/// its end, so a peer that never sends `\n` costs at most the limit plus two bytes of memory.
///
/// # Example
///
/// ```
/// use threadnet::{codec::Lines, Codec};
///
/// let mut codec = Lines::new();
///
/// let mut wire = Vec::new();
/// codec.write(&"hello".to_string(), &mut wire).unwrap();
/// assert_eq!(wire, b"hello\n");
///
/// let mut input: &[u8] = b"one\ntwo\r\n\nlast";
/// assert_eq!(codec.read(&mut input).unwrap().as_deref(), Some("one"));
/// assert_eq!(codec.read(&mut input).unwrap().as_deref(), Some("two"));
/// assert_eq!(codec.read(&mut input).unwrap().as_deref(), Some(""));
/// assert_eq!(codec.read(&mut input).unwrap().as_deref(), Some("last")); // no '\n' before EOF
/// assert_eq!(codec.read(&mut input).unwrap(), None);
/// ```
#[derive(Clone, Debug)]
pub struct Lines {
    /// Largest line, in bytes, terminator excluded.
    max: usize,
}

impl Lines {
    /// Creates a codec with the default maximum line length of 64 KiB (64 * 1024 bytes).
    ///
    /// Same as [`Lines::default`].
    pub fn new() -> Self {
        Lines {
            max: DEFAULT_MAX_LINE_LENGTH,
        }
    }

    /// Sets the longest line, in bytes of UTF-8 text with the terminator (`\n` or `\r\n`) not
    /// counted, that [`read`](super::Codec::read) accepts and [`write`](super::Codec::write)
    /// produces.
    ///
    /// Defaults to 64 KiB (64 * 1024 bytes).
    ///
    /// # Example
    ///
    /// ```
    /// use std::io::ErrorKind;
    /// use threadnet::{codec::Lines, Codec};
    ///
    /// let mut codec = Lines::new().max_line_length(5);
    /// assert_eq!(codec.get_max_line_length(), 5);
    ///
    /// // Five bytes of text fit, whatever the terminator.
    /// let mut input: &[u8] = b"hello\r\nhello, world\n";
    /// assert_eq!(codec.read(&mut input).unwrap().as_deref(), Some("hello"));
    /// // Twelve do not.
    /// let err = codec.read(&mut input).unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::InvalidData);
    ///
    /// let err = codec.write(&"hello, world".to_string(), &mut Vec::new()).unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::InvalidInput);
    /// ```
    pub fn max_line_length(mut self, bytes: usize) -> Self {
        self.max = bytes;
        self
    }

    /// Returns the longest line, in bytes with the terminator not counted, that this codec
    /// reads or writes (see [`max_line_length`](Lines::max_line_length)).
    pub fn get_max_line_length(&self) -> usize {
        self.max
    }

    fn too_long(&self) -> io::Error {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("line exceeds the maximum line length of {} bytes", self.max),
        )
    }

    /// Checks a complete line (terminator already removed) against the limit and UTF-8.
    fn finish(&self, line: Vec<u8>) -> io::Result<String> {
        if line.len() > self.max {
            return Err(self.too_long());
        }
        String::from_utf8(line).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("line is not valid UTF-8: {}", e.utf8_error()),
            )
        })
    }
}

impl Default for Lines {
    /// Same as [`Lines::new`].
    fn default() -> Self {
        Self::new()
    }
}

/// `line` without one trailing `\r`, if it has one.
fn strip_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

impl super::Codec for Lines {
    type In = String;
    type Out = String;

    /// Reads one line and returns it without its `\n` or `\r\n`.
    ///
    /// Returns `Ok(None)` when the stream ends with no text pending. Text pending at the end
    /// of the stream, with no `\n` after it, is returned as a last line.
    ///
    /// # Errors
    ///
    /// * [`io::ErrorKind::InvalidData`] when the line is longer than
    ///   [`max_line_length`](Lines::max_line_length) (reported as soon as that is known, the
    ///   rest of the line is not read) or is not valid UTF-8.
    /// * Any I/O error from `r`.
    fn read<R: BufRead>(&mut self, r: &mut R) -> io::Result<Option<String>> {
        // At most `max` bytes of text, `\r` and `\n`: `take` bounds what one line can cost,
        // and `read_until` finds the `\n` with std's word-at-a-time search.
        let limit = self.max.saturating_add(2);
        let mut line = Vec::new();
        Read::take(&mut *r, limit as u64).read_until(b'\n', &mut line)?;
        if line.is_empty() {
            return Ok(None);
        }
        if line.last() == Some(&b'\n') {
            line.pop();
            let n = strip_cr(&line).len();
            line.truncate(n);
        } else if line.len() == limit {
            return Err(self.too_long());
        }
        // Otherwise the stream ended inside a line: that text is the last line, as received.
        self.finish(line).map(Some)
    }

    /// Writes `msg` followed by `\n`.
    ///
    /// # Errors
    ///
    /// * [`io::ErrorKind::InvalidInput`] when `msg` contains `\n`, ends with `\r` (a reader
    ///   would drop it, so the line would not arrive as sent), or is longer than
    ///   [`max_line_length`](Lines::max_line_length); nothing is written.
    /// * Any I/O error from `w`.
    fn write<W: Write>(&self, msg: &String, w: &mut W) -> io::Result<()> {
        let invalid = |what: String| Err(io::Error::new(io::ErrorKind::InvalidInput, what));
        if msg.len() > self.max {
            return invalid(format!(
                "line of {} bytes exceeds the maximum line length of {} bytes",
                msg.len(),
                self.max
            ));
        }
        if msg.contains('\n') {
            return invalid("line contains a '\\n'".to_string());
        }
        if msg.ends_with('\r') {
            return invalid(
                "line ends with '\\r', which would be read as part of \"\\r\\n\"".into(),
            );
        }
        super::frame_io::write_all_pair(w, msg.as_bytes(), b"\n")
    }

    /// Sets the longest line, in bytes; the same as
    /// [`max_line_length`](Lines::max_line_length).
    fn set_max_frame_length(&mut self, bytes: usize) {
        self.max = bytes;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::test_util::{Counting, OneByte};
    use crate::codec::Codec;
    use std::io::{BufReader, ErrorKind};

    fn read_all(codec: &mut Lines, mut input: &[u8]) -> Vec<String> {
        let mut out = Vec::new();
        while let Some(l) = codec.read(&mut input).unwrap() {
            out.push(l);
        }
        out
    }

    #[test]
    fn defaults() {
        assert_eq!(Lines::new().get_max_line_length(), 64 * 1024);
        assert_eq!(Lines::default().get_max_line_length(), 64 * 1024);
    }

    #[test]
    fn round_trip() {
        let mut codec = Lines::new();
        let msgs = ["hello", "", "wörld ✓", "tab\there", "a\rb"];
        let mut wire = Vec::new();
        for m in msgs {
            codec.write(&m.to_string(), &mut wire).unwrap();
        }
        assert_eq!(wire, "hello\n\nwörld ✓\ntab\there\na\rb\n".as_bytes());
        assert_eq!(read_all(&mut codec, &wire), msgs);
    }

    #[test]
    fn crlf_is_stripped_lone_cr_is_kept() {
        let mut codec = Lines::new();
        assert_eq!(
            read_all(&mut codec, b"a\r\nb\n\r\nc\r\r\nd\re\n"),
            ["a", "b", "", "c\r", "d\re"]
        );
    }

    #[test]
    fn eof_with_and_without_pending_text() {
        let mut codec = Lines::new();
        assert_eq!(read_all(&mut codec, b""), Vec::<String>::new());
        assert_eq!(read_all(&mut codec, b"a\n"), ["a"]);
        assert_eq!(read_all(&mut codec, b"a\nlast"), ["a", "last"]);
        // A final '\r' with no '\n' after it is text, as with BufRead::lines.
        assert_eq!(read_all(&mut codec, b"a\nlast\r"), ["a", "last\r"]);
        let mut input: &[u8] = b"x";
        assert_eq!(codec.read(&mut input).unwrap().as_deref(), Some("x"));
        assert_eq!(codec.read(&mut input).unwrap(), None);
        assert_eq!(codec.read(&mut input).unwrap(), None);
    }

    #[test]
    fn split_one_byte_at_a_time() {
        let mut codec = Lines::new().max_line_length(8);
        let wire = "first\r\nsecond\n\nüñï\nexactly8\r\ntail".as_bytes();
        let mut r = BufReader::with_capacity(1, OneByte(wire));
        let mut got = Vec::new();
        while let Some(l) = codec.read(&mut r).unwrap() {
            got.push(l);
        }
        assert_eq!(got, ["first", "second", "", "üñï", "exactly8", "tail"]);
    }

    #[test]
    fn limit_is_on_text_not_terminator() {
        for cap in [1, 2, 3, 64] {
            let mut codec = Lines::new().max_line_length(3);
            let wire = b"abc\nabc\r\n";
            let mut r = BufReader::with_capacity(cap, OneByte(wire));
            assert_eq!(codec.read(&mut r).unwrap().as_deref(), Some("abc"));
            assert_eq!(codec.read(&mut r).unwrap().as_deref(), Some("abc"));
            assert_eq!(codec.read(&mut r).unwrap(), None);

            for over in [&b"abcd\n"[..], b"abcd\r\n", b"abcd", b"abc\r"] {
                let mut r = BufReader::with_capacity(cap, OneByte(over));
                let err = codec.read(&mut r).unwrap_err();
                assert_eq!(err.kind(), ErrorKind::InvalidData, "{over:?} cap {cap}");
            }
        }
    }

    #[test]
    fn too_long_line_fails_without_reading_the_rest() {
        let max = 100;
        let mut codec = Lines::new().max_line_length(max);
        // Endless input with no newline: the error must come after about `max` bytes.
        for cap in [1, 7, 4096] {
            let endless = Counting {
                inner: io::repeat(b'a'),
                count: 0,
            };
            let mut r = BufReader::with_capacity(cap, endless);
            let err = codec.read(&mut r).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidData);
            assert!(err.to_string().contains("100"), "{err}");
            assert!(
                // The BufReader reads whole buffers: at most one more than the line needs.
                r.get_ref().count <= (max + 2).div_ceil(cap) * cap,
                "read {} bytes with buffer {cap}",
                r.get_ref().count
            );
        }
    }

    #[test]
    fn huge_limit_does_not_overflow() {
        let mut codec = Lines::new().max_line_length(usize::MAX);
        assert_eq!(read_all(&mut codec, b"a\nbc\r\nd"), ["a", "bc", "d"]);
    }

    #[test]
    fn invalid_utf8_is_invalid_data() {
        let mut codec = Lines::new();
        for wire in [&b"ok\n\xff\xfe\n"[..], b"ok\n\xc3"] {
            let mut input: &[u8] = wire;
            assert_eq!(codec.read(&mut input).unwrap().as_deref(), Some("ok"));
            let err = codec.read(&mut input).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidData);
        }
        // Same when the line arrives in pieces.
        let mut r = BufReader::with_capacity(1, OneByte(b"\xe2\x9c\n"));
        assert_eq!(
            codec.read(&mut r).unwrap_err().kind(),
            ErrorKind::InvalidData
        );
    }

    #[test]
    fn write_rejects_newline_trailing_cr_and_overlong() {
        let codec = Lines::new().max_line_length(5);
        for bad in ["a\nb", "\n", "abc\r", "toolong"] {
            let mut out = Vec::new();
            let err = codec.write(&bad.to_string(), &mut out).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{bad:?}");
            assert!(out.is_empty());
        }
        let mut out = Vec::new();
        codec.write(&"fives".to_string(), &mut out).unwrap();
        assert_eq!(out, b"fives\n");
    }

    #[test]
    fn set_max_frame_length_sets_line_limit() {
        let mut codec = Lines::new();
        codec.set_max_frame_length(2);
        assert_eq!(codec.get_max_line_length(), 2);
        let mut input: &[u8] = b"abc\n";
        assert_eq!(
            codec.read(&mut input).unwrap_err().kind(),
            ErrorKind::InvalidData
        );
        let err = codec
            .write(&"abc".to_string(), &mut Vec::new())
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
    }
}

//! Unit tests of `length.rs`.

use super::*;
use crate::codec::test_util::{OneByte, Trickle};
use crate::codec::Codec;
use std::io::{BufReader, ErrorKind, Read};

fn encode(codec: &LengthDelimited, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    codec.write(&payload.to_vec(), &mut out).unwrap();
    out
}

fn read_all(codec: &mut LengthDelimited, mut input: &[u8]) -> Vec<Vec<u8>> {
    let mut frames = Vec::new();
    while let Some(f) = codec.read(&mut input).unwrap() {
        frames.push(f);
    }
    frames
}

const HELLO: &[u8] = b"HELLO, WORLD";

/// `prefix` followed by `HELLO`.
fn hello(prefix: &[u8]) -> Vec<u8> {
    [prefix, HELLO].concat()
}

/// One layout: the codec, a frame on the wire, the message `read` makes of it, and what
/// `write` sends for that message (the wire frame with its skipped bytes other than the
/// length field zeroed).
struct Layout {
    name: &'static str,
    codec: LengthDelimited,
    wire: Vec<u8>,
    message: Vec<u8>,
    written: Vec<u8>,
}

/// The examples of Netty's `LengthFieldBasedFrameDecoder` documentation, in its order,
/// then the layouts of this codec's docs that they do not cover.
fn layouts() -> Vec<Layout> {
    let ld = LengthDelimited::new;
    let same = |name, codec, wire: Vec<u8>| Layout {
        name,
        codec,
        message: wire.clone(),
        written: wire.clone(),
        wire,
    };
    vec![
        same(
            "netty 1: 2-byte length, header kept",
            ld().length_width(2).num_skip(0),
            hello(&[0x00, 0x0c]),
        ),
        Layout {
            name: "netty 2: 2-byte length, header stripped",
            codec: ld().length_width(2),
            wire: hello(&[0x00, 0x0c]),
            message: HELLO.to_vec(),
            written: hello(&[0x00, 0x0c]),
        },
        same(
            "netty 3: 2-byte length counting the header, kept",
            ld().length_width(2).length_adjustment(-2).num_skip(0),
            hello(&[0x00, 0x0e]),
        ),
        same(
            "netty 4: 3-byte length after a 2-byte header, kept",
            ld().length_field_offset(2).length_width(3).num_skip(0),
            hello(&[0xca, 0xfe, 0x00, 0x00, 0x0c]),
        ),
        same(
            "netty 5: 3-byte length before a 2-byte header, kept",
            ld().length_width(3).length_adjustment(2).num_skip(0),
            hello(&[0x00, 0x00, 0x0c, 0xca, 0xfe]),
        ),
        Layout {
            name: "netty 6: hdr1, 2-byte length, hdr2; hdr1 and length stripped",
            codec: ld()
                .length_field_offset(1)
                .length_width(2)
                .length_adjustment(1)
                .num_skip(3),
            wire: hello(&[0xca, 0x00, 0x0c, 0xfe]),
            message: hello(&[0xfe]),
            written: hello(&[0x00, 0x00, 0x0c, 0xfe]),
        },
        Layout {
            name: "netty 7: as 6, the length counting the whole frame",
            codec: ld()
                .length_field_offset(1)
                .length_width(2)
                .length_adjustment(-3)
                .num_skip(3),
            wire: hello(&[0xca, 0x00, 0x10, 0xfe]),
            message: hello(&[0xfe]),
            written: hello(&[0x00, 0x00, 0x10, 0xfe]),
        },
        Layout {
            name: "4-byte length counting the header (goes)",
            codec: ld().length_adjustment(-4),
            wire: hello(&[0, 0, 0, 16]),
            message: HELLO.to_vec(),
            written: hello(&[0, 0, 0, 16]),
        },
        Layout {
            name: "2-byte header before a little-endian 4-byte length, stripped",
            codec: ld().length_field_offset(2).endian(Endian::Little),
            wire: hello(&[0xca, 0xfe, 12, 0, 0, 0]),
            message: HELLO.to_vec(),
            written: hello(&[0, 0, 12, 0, 0, 0]),
        },
        Layout {
            name: "num_skip past the header: the first payload byte cut",
            codec: ld().length_width(1).num_skip(2),
            wire: hello(&[13, b'>']),
            message: HELLO.to_vec(),
            written: hello(&[13, 0]),
        },
        same(
            "20-byte header before the length (heap header), kept",
            ld().length_field_offset(20).length_width(2).num_skip(0),
            hello(&[[7u8; 20].as_slice(), &[0, 12]].concat()),
        ),
    ]
}

#[test]
fn every_layout_decodes_its_known_bytes() {
    for mut l in layouts() {
        let mut input: &[u8] = &l.wire;
        let got = l.codec.read(&mut input).unwrap();
        assert_eq!(got.as_deref(), Some(&l.message[..]), "{}", l.name);
        assert_eq!(l.codec.read(&mut input).unwrap(), None, "{}", l.name);
    }
}

#[test]
fn every_layout_writes_what_it_reads_back() {
    for mut l in layouts() {
        let wire = encode(&l.codec, &l.message);
        assert_eq!(wire, l.written, "{}", l.name);
        assert_eq!(read_all(&mut l.codec, &wire), vec![l.message], "{}", l.name);
    }
}

#[test]
fn every_layout_round_trips_many_frames_whole_and_one_byte_at_a_time() {
    for mut l in layouts() {
        // Messages of other lengths, built from the known one: its kept header (if
        // any) then payload bytes of several sizes.
        let kept = l.message.len() - HELLO.len();
        let msgs: Vec<Vec<u8>> = [0, 1, 5, 200]
            .iter()
            .map(|&n| [&l.message[..kept], &vec![b'z'; n][..]].concat())
            .chain([l.message.clone()])
            .collect();
        let mut wire = Vec::new();
        for m in &msgs {
            l.codec.write(m, &mut wire).unwrap();
        }
        // What comes back is what was sent, its length field (if the message holds it)
        // set by `write`: the frame without its first `num_skip` bytes.
        let skip = l.codec.skip();
        let msgs: Vec<Vec<u8>> = msgs
            .iter()
            .map(|m| encode(&l.codec, m)[skip..].to_vec())
            .collect();
        assert_eq!(msgs.last(), Some(&l.message), "{}", l.name);
        assert_eq!(read_all(&mut l.codec, &wire), msgs, "{}", l.name);
        let mut r = BufReader::with_capacity(1, OneByte(&wire));
        let mut got = Vec::new();
        while let Some(f) = l.codec.read(&mut r).unwrap() {
            got.push(f);
        }
        assert_eq!(got, msgs, "{} (one byte at a time)", l.name);
    }
}

#[test]
fn every_layout_reports_eof_inside_a_frame() {
    for mut l in layouts() {
        for cut in 1..l.wire.len() {
            let mut input: &[u8] = &l.wire[..cut];
            let err = l.codec.read(&mut input).unwrap_err();
            assert_eq!(
                err.kind(),
                ErrorKind::UnexpectedEof,
                "{} cut at {cut}",
                l.name
            );
        }
    }
}

#[test]
fn a_negative_adjusted_length_is_invalid_data_not_a_panic() {
    // A length counting a 4-byte header cannot be below 4.
    let mut codec = LengthDelimited::new().length_adjustment(-4);
    for field in 0..4u8 {
        let wire = [0, 0, 0, field, 1, 2, 3];
        let mut input: &[u8] = &wire;
        let err = codec.read(&mut input).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidData);
        assert!(err.to_string().contains("negative"), "{err}");
        assert_eq!(input, [1, 2, 3], "nothing past the header is read");
    }
    // Extreme adjustments with extreme fields neither wrap nor panic.
    let mut codec = LengthDelimited::new()
        .length_width(8)
        .length_adjustment(isize::MIN)
        .max_frame_length(usize::MAX);
    let mut input: &[u8] = &[0; 8];
    assert_eq!(
        codec.read(&mut input).unwrap_err().kind(),
        ErrorKind::InvalidData
    );
    let mut codec = LengthDelimited::new()
        .length_width(8)
        .length_adjustment(isize::MAX)
        .max_frame_length(usize::MAX);
    let mut input: &[u8] = &[0xff; 8];
    let err = codec.read(&mut input).unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::InvalidData | ErrorKind::OutOfMemory),
        "{err:?}"
    );
}

#[test]
fn write_refuses_messages_the_layout_cannot_carry() {
    let refused = |codec: &LengthDelimited, msg: &[u8]| {
        let mut out = Vec::new();
        let err = codec.write(&msg.to_vec(), &mut out).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
        assert!(out.is_empty(), "nothing is written");
        err.to_string()
    };
    // The header kept in the message: a message must at least hold it.
    let keep = LengthDelimited::new().length_field_offset(2).num_skip(0);
    let msg = refused(&keep, &[1, 2, 3, 4, 5]);
    assert!(
        msg.contains("5 bytes") && msg.contains("6 header bytes"),
        "{msg}"
    );
    assert_eq!(encode(&keep, &[1, 2, 9, 9, 9, 9]), [1, 2, 0, 0, 0, 0]);
    // A length that leaves out one byte after it: the payload must hold that byte.
    let hdr2 = LengthDelimited::new().length_adjustment(1);
    refused(&hdr2, b"");
    assert_eq!(encode(&hdr2, b"x"), [0, 0, 0, 0, b'x']);
    // A 1-byte length counting itself holds at most 255 - 1 payload bytes.
    let tiny = LengthDelimited::new().length_width(1).length_adjustment(-1);
    assert_eq!(encode(&tiny, &[0; 254])[0], 255);
    let msg = refused(&tiny, &[0; 255]);
    assert!(msg.contains("256"), "{msg}");
}

#[test]
fn the_limit_applies_to_the_adjusted_length_before_allocating() {
    // Length counting the header, at most 5 payload bytes.
    let mut codec = LengthDelimited::new()
        .length_adjustment(-4)
        .max_frame_length(5);
    let mut input: &[u8] = &[0, 0, 0, 9, 1, 2, 3, 4, 5, 0, 0, 0, 10, 1];
    assert_eq!(codec.read(&mut input).unwrap(), Some(vec![1, 2, 3, 4, 5]));
    let err = codec.read(&mut input).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidData);
    assert!(err.to_string().contains("frame of 6 bytes"), "{err}");
    assert!(err.to_string().contains("of 5 bytes"), "{err}");
    assert_eq!(input, [1]);
    assert!(codec.write(&vec![0; 5], &mut Vec::new()).is_ok());
    let err = codec.write(&vec![0; 6], &mut Vec::new()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);

    // A positive adjustment: a field of 5 announces 6 payload bytes.
    let mut codec = LengthDelimited::new()
        .length_width(2)
        .length_adjustment(1)
        .max_frame_length(5);
    let mut input: &[u8] = &[0, 5, 1];
    assert_eq!(
        codec.read(&mut input).unwrap_err().kind(),
        ErrorKind::InvalidData
    );

    // 4 GiB - 1 announced, adjusted by -4: refused on the header, nothing allocated
    // (a 1 MiB limit), nothing read past it.
    let mut codec = LengthDelimited::new().length_adjustment(-4);
    let mut input: &[u8] = &[0xff, 0xff, 0xff, 0xff, 1, 2];
    let err = codec.read(&mut input).unwrap_err();
    assert!(err.to_string().contains("4294967291"), "{err}");
    assert_eq!(input, [1, 2]);

    // Header bytes kept in the message are not counted.
    let mut codec = LengthDelimited::new().num_skip(0).max_frame_length(3);
    let frame = vec![0, 0, 0, 3, b'a', b'b', b'c'];
    assert_eq!(encode(&codec, &frame), frame);
    assert_eq!(read_all(&mut codec, &frame), vec![frame]);
}

#[test]
fn a_frame_shorter_than_num_skip_is_invalid_data() {
    let mut codec = LengthDelimited::new().length_width(2).num_skip(4);
    let mut input: &[u8] = &[0, 1, b'x', 0, 2, b'a', b'b'];
    let err = codec.read(&mut input).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidData);
    assert!(err.to_string().contains("3 bytes"), "{err}");
    // Exactly num_skip bytes: an empty message.
    let mut input: &[u8] = &[0, 2, b'a', b'b'];
    assert_eq!(codec.read(&mut input).unwrap(), Some(Vec::new()));
}

#[test]
#[should_panic(expected = "at most 65536")]
fn an_offset_over_64_kib_panics() {
    let _ = LengthDelimited::new().length_field_offset(64 * 1024 + 1);
}

#[test]
fn default_layout_matches_tokio_util() {
    let codec = LengthDelimited::new();
    assert_eq!(
        encode(&codec, b"hello"),
        [0, 0, 0, 5, b'h', b'e', b'l', b'l', b'o']
    );
    assert_eq!(encode(&codec, b""), [0, 0, 0, 0]);
    let big = vec![7u8; 0x0001_0203];
    let wire = encode(&codec, &big);
    assert_eq!(&wire[..4], [0, 1, 2, 3]);
    assert_eq!(wire.len(), 4 + big.len());
}

#[test]
fn defaults() {
    let d = LengthDelimited::default();
    assert_eq!(d.get_max_frame_length(), 1024 * 1024);
    assert_eq!(d.width, 4);
    assert_eq!(d.endian, Endian::Big);
    assert_eq!(Endian::default(), Endian::Big);
}

#[test]
fn round_trip_many_frames_in_one_buffer() {
    let mut codec = LengthDelimited::new();
    let frames: Vec<Vec<u8>> = vec![
        b"one".to_vec(),
        Vec::new(),
        vec![0xff; 1000],
        b"four".to_vec(),
    ];
    let mut wire = Vec::new();
    for f in &frames {
        codec.write(f, &mut wire).unwrap();
    }
    let got = read_all(&mut codec, &wire);
    assert_eq!(got, frames);
    // Each payload buffer was allocated once, at its exact size, and never grown.
    for f in &got {
        assert_eq!(f.capacity(), f.len());
    }
}

#[test]
fn every_width_and_endian() {
    let payload = vec![0xabu8; 258]; // 0x0102: the byte order shows
    let cases: [(usize, Endian, &[u8]); 6] = [
        (2, Endian::Big, &[0x01, 0x02]),
        (2, Endian::Little, &[0x02, 0x01]),
        (4, Endian::Big, &[0, 0, 0x01, 0x02]),
        (4, Endian::Little, &[0x02, 0x01, 0, 0]),
        (8, Endian::Big, &[0, 0, 0, 0, 0, 0, 0x01, 0x02]),
        (8, Endian::Little, &[0x02, 0x01, 0, 0, 0, 0, 0, 0]),
    ];
    for (width, endian, header) in cases {
        let mut codec = LengthDelimited::new().length_width(width).endian(endian);
        let wire = encode(&codec, &payload);
        assert_eq!(&wire[..width], header, "width {width} {endian:?}");
        assert_eq!(&wire[width..], &payload[..]);
        assert_eq!(read_all(&mut codec, &wire), vec![payload.clone()]);
    }
    for endian in [Endian::Big, Endian::Little] {
        let mut codec = LengthDelimited::new().length_width(1).endian(endian);
        let wire = encode(&codec, &payload[..200]);
        assert_eq!(wire[0], 200);
        assert_eq!(read_all(&mut codec, &wire), vec![payload[..200].to_vec()]);
    }
}

#[test]
#[should_panic(expected = "1 to 8")]
fn width_zero_panics() {
    let _ = LengthDelimited::new().length_width(0);
}

#[test]
#[should_panic(expected = "1 to 8")]
fn width_nine_panics() {
    let _ = LengthDelimited::new().length_width(9);
}

#[test]
fn write_refuses_what_the_prefix_cannot_hold() {
    let c1 = LengthDelimited::new().length_width(1);
    let mut out = Vec::new();
    c1.write(&vec![0; 255], &mut out).unwrap();
    assert_eq!(out[0], 255);
    let mut out = Vec::new();
    let err = c1.write(&vec![0; 256], &mut out).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(out.is_empty());

    let c2 = LengthDelimited::new().length_width(2);
    assert!(c2.write(&vec![0; 65_535], &mut Vec::new()).is_ok());
    let err = c2.write(&vec![0; 65_536], &mut Vec::new()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
}

#[test]
fn write_over_max_is_invalid_input_and_writes_nothing() {
    let codec = LengthDelimited::new().max_frame_length(4);
    let mut out = Vec::new();
    codec.write(&b"four".to_vec(), &mut out).unwrap();
    assert_eq!(out, [0, 0, 0, 4, b'f', b'o', b'u', b'r']);
    let mut out = Vec::new();
    let err = codec.write(&b"fives".to_vec(), &mut out).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(out.is_empty());
}

#[test]
fn read_over_max_is_rejected_on_the_header() {
    // A header announcing 4 GiB - 1 with the default 1 MiB limit: refused at once, and
    // nothing after the header is consumed.
    let mut codec = LengthDelimited::new();
    let wire = [0xff, 0xff, 0xff, 0xff, 1, 2, 3];
    let mut input: &[u8] = &wire;
    let err = codec.read(&mut input).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidData);
    let msg = err.to_string();
    assert!(msg.contains("4294967295"), "{msg}");
    assert!(msg.contains("1048576"), "{msg}");
    assert_eq!(input, [1, 2, 3]);

    // Exactly at the limit is fine, one over is not.
    let mut codec = LengthDelimited::new().max_frame_length(3);
    let mut input: &[u8] = &[0, 0, 0, 3, b'a', b'b', b'c', 0, 0, 0, 4];
    assert_eq!(codec.read(&mut input).unwrap(), Some(b"abc".to_vec()));
    let err = codec.read(&mut input).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidData);
}

#[test]
fn read_huge_u64_prefix_errors_without_panicking() {
    // With the limit lifted, a u64::MAX prefix must still fail cleanly (usize overflow on
    // 32-bit targets, an impossible allocation on 64-bit ones) instead of aborting.
    let mut codec = LengthDelimited::new()
        .length_width(8)
        .max_frame_length(usize::MAX);
    let mut input: &[u8] = &[0xff; 8];
    let err = codec.read(&mut input).unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::InvalidData | ErrorKind::OutOfMemory),
        "{err:?}"
    );

    // With the default limit, a large u64 prefix is InvalidData.
    let mut codec = LengthDelimited::new().length_width(8);
    let mut input: &[u8] = &[0x80, 0, 0, 0, 0, 0, 0, 0];
    assert_eq!(
        codec.read(&mut input).unwrap_err().kind(),
        ErrorKind::InvalidData
    );
}

#[test]
fn set_max_frame_length_applies_to_read_and_write() {
    let mut codec = LengthDelimited::new();
    codec.set_max_frame_length(2);
    assert_eq!(codec.get_max_frame_length(), 2);
    let err = codec.write(&b"abc".to_vec(), &mut Vec::new()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    let mut input: &[u8] = &[0, 0, 0, 3, b'a', b'b', b'c'];
    assert_eq!(
        codec.read(&mut input).unwrap_err().kind(),
        ErrorKind::InvalidData
    );
}

#[test]
fn eof_at_boundary_vs_inside_header_vs_inside_payload() {
    let mut codec = LengthDelimited::new();

    let mut input: &[u8] = &[];
    assert_eq!(codec.read(&mut input).unwrap(), None);

    let mut input: &[u8] = &[0, 0, 0, 1, b'x'];
    assert_eq!(codec.read(&mut input).unwrap(), Some(b"x".to_vec()));
    assert_eq!(codec.read(&mut input).unwrap(), None);

    for cut in 1..4 {
        let wire = [0u8, 0, 0, 5];
        let mut input: &[u8] = &wire[..cut];
        let err = codec.read(&mut input).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::UnexpectedEof, "header cut at {cut}");
    }

    let mut input: &[u8] = &[0, 0, 0, 5];
    let err = codec.read(&mut input).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::UnexpectedEof);

    let mut input: &[u8] = &[0, 0, 0, 5, b'h', b'e'];
    let err = codec.read(&mut input).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::UnexpectedEof);
}

#[test]
fn frames_split_one_byte_at_a_time() {
    for (width, endian) in [(1, Endian::Big), (4, Endian::Little), (8, Endian::Big)] {
        let mut codec = LengthDelimited::new().length_width(width).endian(endian);
        let frames = vec![b"alpha".to_vec(), Vec::new(), vec![9u8; 100]];
        let mut wire = Vec::new();
        for f in &frames {
            codec.write(f, &mut wire).unwrap();
        }
        let mut r = BufReader::with_capacity(1, OneByte(&wire));
        let mut got = Vec::new();
        while let Some(f) = codec.read(&mut r).unwrap() {
            got.push(f);
        }
        assert_eq!(got, frames, "width {width} {endian:?}");
    }
}

#[test]
fn eof_inside_payload_with_one_byte_reads() {
    let mut codec = LengthDelimited::new();
    let wire = [0u8, 0, 0, 3, b'a', b'b'];
    let mut r = BufReader::with_capacity(1, OneByte(&wire));
    let err = codec.read(&mut r).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::UnexpectedEof);
}

#[test]
fn partial_writes_are_completed() {
    let codec = LengthDelimited::new();
    let mut w = Trickle::new(3);
    codec.write(&b"hello".to_vec(), &mut w).unwrap();
    assert_eq!(w.out, [0, 0, 0, 5, b'h', b'e', b'l', b'l', b'o']);
    assert!(w.calls >= 3);
}

#[test]
fn write_zero_is_an_error_not_a_hang() {
    let codec = LengthDelimited::new();
    let mut sink: &mut [u8] = &mut [0u8; 2];
    let err = codec.write(&b"hello".to_vec(), &mut sink).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::WriteZero);
}

/// A source that hands out at most `max` bytes per `read`, and records how many bytes went
/// into reads of exactly `buffer` bytes (a `BufReader` of that capacity filling its buffer)
/// and how many into any other read (a bypass: straight into the caller's memory).
struct Source<'a> {
    data: &'a [u8],
    max: usize,
    buffer: usize,
    through_buffer: usize,
    direct: usize,
}

impl Read for Source<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(self.max).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        if buf.len() == self.buffer {
            self.through_buffer += n;
        } else {
            self.direct += n;
        }
        Ok(n)
    }
}

/// A frame larger than the read buffer: after the bytes buffered with its header, the rest
/// is read from the source straight into the message (the reader bypasses its buffer for
/// reads of at least its capacity) instead of through the buffer and a second copy.
#[test]
fn a_frame_larger_than_the_buffer_is_read_straight_into_the_message() {
    let cap = 32 * 1024;
    let payload: Vec<u8> = (0..100 * 1024).map(|i| (i % 251) as u8).collect();
    let codec = LengthDelimited::new().max_frame_length(payload.len());
    let wire = encode(&codec, &payload);
    let mut r = BufReader::with_capacity(
        cap,
        Source {
            data: &wire,
            max: 16 * 1024,
            buffer: cap,
            through_buffer: 0,
            direct: 0,
        },
    );
    let mut codec = codec;
    assert_eq!(codec.read(&mut r).unwrap(), Some(payload.clone()));
    let src = r.get_ref();
    assert_eq!(src.through_buffer + src.direct, wire.len());
    assert!(
        src.direct >= payload.len() / 2,
        "only {} of {} bytes bypassed the buffer ({} through it)",
        src.direct,
        payload.len(),
        src.through_buffer
    );
}

/// Frames just below, at and just above the read buffer's size, with other frames before
/// and after them, arriving in reads of every size from 1 byte to more than the buffer.
#[test]
fn frames_around_the_buffer_size_in_reads_of_any_size() {
    let cap = 1024;
    let mut codec = LengthDelimited::new();
    let sizes = [
        0,
        1,
        cap - 5,
        cap - 4,
        cap - 1,
        cap,
        cap + 1,
        cap / 2,
        3 * cap + 7,
        2,
    ];
    let frames: Vec<Vec<u8>> = sizes
        .iter()
        .enumerate()
        .map(|(k, &n)| (0..n).map(|i| (i * 7 + k) as u8).collect())
        .collect();
    let mut wire = Vec::new();
    for f in &frames {
        codec.write(f, &mut wire).unwrap();
    }
    for max in [1, 3, 100, cap - 1, cap, cap + 1, 5 * cap] {
        let src = Source {
            data: &wire,
            max,
            buffer: cap,
            through_buffer: 0,
            direct: 0,
        };
        let mut r = BufReader::with_capacity(cap, src);
        let mut got = Vec::new();
        while let Some(f) = codec.read(&mut r).unwrap() {
            got.push(f);
        }
        assert!(got == frames, "reads of at most {max} bytes");
    }
}

/// EOF inside a frame larger than the buffer, after part of it was read directly, is still
/// `UnexpectedEof`, not a short frame.
#[test]
fn eof_inside_a_large_frame_is_an_error() {
    let cap = 1024;
    let codec = LengthDelimited::new();
    let wire = encode(&codec, &vec![5u8; 10 * cap]);
    for cut in [5, cap, 4 * cap, wire.len() - 1] {
        let src = Source {
            data: &wire[..cut],
            max: 3 * cap,
            buffer: cap,
            through_buffer: 0,
            direct: 0,
        };
        let mut r = BufReader::with_capacity(cap, src);
        let err = codec.clone().read(&mut r).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::UnexpectedEof, "cut at {cut}");
    }
}

//! The frame codec against RFC 6455, section by section. Every input is also read split at
//! every byte (one byte per `read`), which must give the same results.

use std::io::{BufReader, ErrorKind};

use super::*;
use crate::codec::test_util::OneByte;
use crate::codec::Codec;

const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// A client frame: masked with `KEY`, the header's first byte given whole (FIN, RSV, opcode).
fn frame_b0(b0: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![b0];
    let n = payload.len();
    if n < 126 {
        out.push(0x80 | n as u8);
    } else if n <= 0xFFFF {
        out.push(0x80 | 126);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        out.push(0x80 | 127);
        out.extend_from_slice(&(n as u64).to_be_bytes());
    }
    out.extend_from_slice(&KEY);
    let mut p = payload.to_vec();
    apply_mask(&mut p, KEY);
    out.extend_from_slice(&p);
    out
}

fn frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    frame_b0(if fin { 0x80 } else { 0 } | opcode, payload)
}

type Read = Result<Option<Result<Message, WsError>>, ErrorKind>;

/// Everything `codec` reads from `wire`, up to and including the first `None` or error.
fn read_with<R: std::io::BufRead>(mut codec: WsCodec, r: &mut R) -> Vec<Read> {
    let mut out = Vec::new();
    loop {
        let got = codec.read(r).map_err(|e| e.kind());
        let end = !matches!(got, Ok(Some(_)));
        out.push(got);
        if end {
            return out;
        }
    }
}

/// Reads `wire` whole and split at every byte; both must agree.
fn read_all_with(codec: WsCodec, wire: &[u8]) -> Vec<Read> {
    let whole = read_with(codec.clone(), &mut &wire[..]);
    let split = read_with(codec, &mut BufReader::with_capacity(1, OneByte(wire)));
    assert_eq!(whole, split, "split reads differ");
    whole
}

fn read_all(wire: &[u8]) -> Vec<Read> {
    read_all_with(WsCodec::new(), wire)
}

fn ok(m: Message) -> Read {
    Ok(Some(Ok(m)))
}

fn err(code: u16) -> Vec<Read> {
    vec![
        Ok(Some(Err(WsError { code, reason: "" }))),
        Ok(None), // then everything is drained to EOF
    ]
}

/// The close codes of what was read (reasons are not compared).
fn codes(reads: Vec<Read>) -> Vec<Read> {
    reads
        .into_iter()
        .map(|r| match r {
            Ok(Some(Err(e))) => Ok(Some(Err(WsError { reason: "", ..e }))),
            other => other,
        })
        .collect()
}

fn text(s: &str) -> Message {
    Message::Text(s.to_string())
}

// 5.2: framing.

#[test]
fn s5_2_reserved_bits_refused() {
    for rsv in [0x40, 0x20, 0x10] {
        let wire = frame_b0(0x80 | rsv | 0x1, b"hi");
        assert_eq!(codes(read_all(&wire)), err(1002), "rsv {rsv:#x}");
    }
}

#[test]
fn s5_2_unknown_opcodes_refused() {
    for op in [3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF] {
        let wire = frame(true, op, b"");
        assert_eq!(codes(read_all(&wire)), err(1002), "opcode {op:#x}");
    }
}

#[test]
fn s5_2_lengths_7_16_and_64_bit() {
    for n in [0, 125, 126, 127, 0xFFFF, 0x10000] {
        let payload = vec![7u8; n];
        let got = read_all(&frame(true, 0x2, &payload));
        assert_eq!(
            got,
            vec![ok(Message::Binary(payload)), Ok(None)],
            "length {n}"
        );
    }
}

#[test]
fn s5_2_64_bit_length_with_top_bit_refused_before_allocating() {
    let mut wire = vec![0x82, 0x80 | 127];
    wire.extend_from_slice(&(1u64 << 63).to_be_bytes());
    wire.extend_from_slice(&KEY);
    assert_eq!(codes(read_all(&wire)), err(1002));
}

#[test]
fn s5_2_eof_inside_a_frame_is_unexpected_eof() {
    let wire = frame(true, 0x1, b"Hello");
    for cut in 1..wire.len() {
        assert_eq!(
            read_all(&wire[..cut]),
            vec![Err(ErrorKind::UnexpectedEof)],
            "cut at {cut}"
        );
    }
    assert_eq!(read_all(b""), vec![Ok(None)]);
}

// 5.3: masking.

#[test]
fn s5_3_rfc_example_and_unmasked_client_frame_refused() {
    // Section 5.7: a masked "Hello".
    let wire = [
        0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
    ];
    assert_eq!(read_all(&wire), vec![ok(text("Hello")), Ok(None)]);
    // The same unmasked (section 5.7's first example) is a protocol error from a client.
    let wire = [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
    assert_eq!(codes(read_all(&wire)), err(1002));
}

#[test]
fn s5_3_mask_word_at_a_time_matches_bytewise() {
    let key = [1, 2, 0x80, 0xff];
    for n in 0..40 {
        let data: Vec<u8> = (0..n as u8).map(|i| i.wrapping_mul(37)).collect();
        let mut fast = data.clone();
        apply_mask(&mut fast, key);
        let slow: Vec<u8> = data
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ key[i % 4])
            .collect();
        assert_eq!(fast, slow, "length {n}");
    }
}

#[test]
fn s5_3_server_frames_are_not_masked() {
    let mut out = Vec::new();
    WsCodec::new()
        .write(&Message::Binary(vec![1; 300]), &mut out)
        .unwrap();
    assert_eq!(&out[..4], &[0x82, 126, 0x01, 0x2c]); // mask bit clear, 16-bit length
    assert_eq!(out.len(), 304);
}

// 5.4: fragmentation.

#[test]
fn s5_4_fragments_joined_with_control_frames_between() {
    let mut wire = frame(false, 0x1, b"Hel");
    wire.extend(frame(true, 0x9, b"ping"));
    wire.extend(frame(false, 0x0, b"l"));
    wire.extend(frame(true, 0xA, b""));
    wire.extend(frame(true, 0x0, b"o"));
    wire.extend(frame(false, 0x2, &[1]));
    wire.extend(frame(true, 0x0, &[2]));
    assert_eq!(
        read_all(&wire),
        vec![
            ok(Message::Ping(b"ping".to_vec())),
            ok(Message::Pong(vec![])),
            ok(text("Hello")),
            ok(Message::Binary(vec![1, 2])),
            Ok(None)
        ]
    );
}

#[test]
fn s5_4_continuation_without_a_message_refused() {
    assert_eq!(codes(read_all(&frame(true, 0x0, b"x"))), err(1002));
}

#[test]
fn s5_4_new_message_inside_a_fragmented_one_refused() {
    let mut wire = frame(false, 0x1, b"a");
    wire.extend(frame(true, 0x2, b"b"));
    assert_eq!(codes(read_all(&wire)), err(1002));
}

#[test]
fn s5_4_eof_between_fragments_is_unexpected_eof() {
    assert_eq!(
        read_all(&frame(false, 0x2, b"a")),
        vec![Err(ErrorKind::UnexpectedEof)]
    );
}

// 5.5: control frames.

#[test]
fn s5_5_control_frames_fragmented_or_long_refused() {
    assert_eq!(codes(read_all(&frame(false, 0x9, b"x"))), err(1002));
    assert_eq!(codes(read_all(&frame(true, 0x9, &[0; 126]))), err(1002));
    assert_eq!(
        read_all(&frame(true, 0x9, &[0; 125])),
        vec![ok(Message::Ping(vec![0; 125])), Ok(None)]
    );
}

#[test]
fn s5_5_1_close_surfaces_code_and_reason_then_input_is_drained() {
    let mut wire = frame(true, 0x8, &[&1001u16.to_be_bytes()[..], b"bye"].concat());
    wire.extend(frame(true, 0x1, b"after close: ignored"));
    wire.extend(b"garbage");
    let close = CloseFrame {
        code: 1001,
        reason: "bye".into(),
    };
    assert_eq!(
        read_all(&wire),
        vec![ok(Message::Close(Some(close))), Ok(None)]
    );
    assert_eq!(
        read_all(&frame(true, 0x8, b"")),
        vec![ok(Message::Close(None)), Ok(None)]
    );
}

#[test]
fn s5_5_1_close_payload_of_one_byte_or_bad_reason_refused() {
    assert_eq!(codes(read_all(&frame(true, 0x8, &[3]))), err(1002));
    let bad = [&1000u16.to_be_bytes()[..], &[0xff]].concat();
    assert_eq!(codes(read_all(&frame(true, 0x8, &bad))), err(1007));
}

#[test]
fn s5_5_2_ping_is_answered_with_pong_by_auto_reply() {
    // AutoReply is tested on a socket in tests/ws.rs; here the frame the pong makes.
    let mut out = Vec::new();
    WsCodec::new()
        .write(&Message::Pong(b"hi".to_vec()), &mut out)
        .unwrap();
    assert_eq!(out, [0x8A, 0x02, b'h', b'i']);
    let e = WsCodec::new().write(&Message::Ping(vec![0; 126]), &mut Vec::new());
    assert_eq!(e.unwrap_err().kind(), ErrorKind::InvalidInput);
}

// 5.6: data frames.

#[test]
fn s5_6_text_and_binary_round_trip_through_write() {
    for m in [text("héllo"), Message::Binary(vec![0, 255]), text("")] {
        let mut out = Vec::new();
        WsCodec::new().write(&m, &mut out).unwrap();
        // Mask the server frame as a client would, and read it back.
        let (b0, payload) = (out[0], out[2..].to_vec());
        assert_eq!(read_all(&frame_b0(b0, &payload)), vec![ok(m), Ok(None)]);
    }
}

// 7.4: close codes.

#[test]
fn s7_4_close_codes() {
    for code in [
        1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999,
    ] {
        assert!(is_valid_close_code(code), "{code}");
        let got = read_all(&frame(true, 0x8, &code.to_be_bytes()));
        let close = CloseFrame {
            code,
            reason: String::new(),
        };
        assert_eq!(got, vec![ok(Message::Close(Some(close))), Ok(None)]);
    }
    for code in [
        0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535,
    ] {
        assert!(!is_valid_close_code(code), "{code}");
        assert_eq!(
            codes(read_all(&frame(true, 0x8, &code.to_be_bytes()))),
            err(1002)
        );
    }
    let bad = Message::Close(Some(CloseFrame {
        code: 1005,
        reason: String::new(),
    }));
    let e = WsCodec::new().write(&bad, &mut Vec::new()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
}

// 8.1: UTF-8.

#[test]
fn s8_1_invalid_utf8_refused_with_1007() {
    for bad in [
        &[0xff][..],
        &[0xc0, 0x80],
        &[0xed, 0xa0, 0x80],
        &[0xce, 0xba, 0xe1],
    ] {
        assert_eq!(
            codes(read_all(&frame(true, 0x1, bad))),
            err(1007),
            "{bad:x?}"
        );
    }
}

#[test]
fn s8_1_code_point_split_across_fragments_is_fine() {
    let snowman = "☃".as_bytes(); // e2 98 83
    let mut wire = frame(false, 0x1, &snowman[..1]);
    wire.extend(frame(false, 0x0, &snowman[1..2]));
    wire.extend(frame(true, 0x0, &snowman[2..]));
    assert_eq!(read_all(&wire), vec![ok(text("☃")), Ok(None)]);
}

#[test]
fn s8_1_invalid_utf8_fails_fast_before_the_message_ends() {
    // The first fragment is already invalid: refused without waiting for the rest, which
    // never comes (the wire ends mid-message, yet the answer is 1007, not an EOF error).
    let wire = frame(false, 0x1, &[b'a', 0xff]);
    assert_eq!(codes(read_all(&wire)), err(1007));
    // A sequence cut by the last fragment is invalid.
    let wire = frame(true, 0x1, &[0xe2, 0x98]);
    assert_eq!(codes(read_all(&wire)), err(1007));
}

#[test]
fn s8_1_invalid_utf8_fails_fast_inside_one_frame() {
    // A 100-byte frame cut after 10 bytes, the 7th invalid: refused as those bytes are read
    // (Autobahn 6.4.3 and 6.4.4), not an EOF error for the 90 that never come.
    let mut payload = vec![b'a'; 100];
    payload[6] = 0xff;
    let wire = frame(true, 0x1, &payload);
    assert_eq!(codes(read_all(&wire[..2 + 4 + 10])), err(1007));
    // Valid so far: the rest is waited for (here the wire ends, so EOF inside the frame).
    payload[6] = b'a';
    let wire = frame(true, 0x1, &payload);
    assert_eq!(
        read_all(&wire[..2 + 4 + 10]),
        vec![Err(ErrorKind::UnexpectedEof)]
    );
}

// Limits (10.4): 1009, checked on the header.

#[test]
fn limits_frame_and_message_1009() {
    let codec = WsCodec::new().max_frame(10).max_message(15);
    let got = read_all_with(codec.clone(), &frame(true, 0x2, &[0; 11]));
    assert_eq!(codes(got), err(1009));
    // The header of a huge frame alone is refused: nothing waits for its payload.
    let mut wire = vec![0x82, 0x80 | 127];
    wire.extend_from_slice(&(1u64 << 40).to_be_bytes());
    wire.extend_from_slice(&KEY);
    assert_eq!(codes(read_all(&wire)), err(1009));
    // Frames within the limit, the message over it.
    let mut wire = frame(false, 0x2, &[0; 10]);
    wire.extend(frame(true, 0x0, &[0; 6]));
    assert_eq!(codes(read_all_with(codec.clone(), &wire)), err(1009));
    let mut fits = frame(false, 0x2, &[0; 10]);
    fits.extend(frame(true, 0x0, &[0; 5]));
    assert_eq!(
        read_all_with(codec.clone(), &fits),
        vec![ok(Message::Binary(vec![0; 15])), Ok(None)]
    );
    let e = codec.write(&Message::Binary(vec![0; 11]), &mut Vec::new());
    assert_eq!(e.unwrap_err().kind(), ErrorKind::InvalidInput);
}

#[test]
fn a_payload_is_allocated_once_at_its_length() {
    // Read whole from a buffer, and one byte per read: either way one allocation of exactly
    // the frame's length (checked against the limit first), never grown as bytes arrive.
    for len in [5000usize, 70_000] {
        let payload: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        let wire = frame(true, 0x2, &payload);
        let whole = WsCodec::new().read(&mut &wire[..]).unwrap();
        let split = WsCodec::new()
            .read(&mut BufReader::with_capacity(1, OneByte(&wire)))
            .unwrap();
        for got in [whole, split] {
            match got {
                Some(Ok(Message::Binary(b))) => {
                    assert_eq!(b, payload);
                    assert_eq!(b.capacity(), len, "one allocation of {len} bytes");
                }
                other => panic!("{other:?}"),
            }
        }
    }
}

#[test]
fn heartbeat_frames_are_masked_per_beat_for_a_client() {
    let mut server_ping = Vec::new();
    WsCodec::new()
        .write(&Message::Ping(b"hb".to_vec()), &mut server_ping)
        .unwrap();
    let a = frame::masked(&server_ping, [1, 2, 3, 4]).unwrap();
    let b = frame::masked(&server_ping, [5, 6, 7, 8]).unwrap();
    assert_ne!(a, b);
    for (wire, key) in [(a, [1, 2, 3, 4]), (b, [5, 6, 7, 8])] {
        assert_eq!(wire[..6], [0x89, 0x82, key[0], key[1], key[2], key[3]]);
        // The server side reads it as the client's ping.
        let got = WsCodec::new().read(&mut &wire[..]).unwrap();
        assert_eq!(got, Some(Ok(Message::Ping(b"hb".to_vec()))));
    }
    // Not one unmasked frame: left alone.
    assert_eq!(frame::masked(&server_ping[..3], [1, 2, 3, 4]), None);
    assert_eq!(frame::masked(&frame(true, 0x9, b"x"), [1, 2, 3, 4]), None);
}

#[test]
fn s5_3_heartbeats_of_a_client_codec_under_auto_reply_are_masked() {
    use crate::conn::Connection;
    use crate::{ConnOptions, TcpClient};
    use std::io::Read;
    use std::net::TcpListener;
    use std::time::Duration;
    // A client made with TcpClient, WsCodec::client and AutoReply (no WsClient): its pings
    // are client frames too, masked (a server closes an unmasked one with 1002).
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let beat = heartbeat(Duration::from_millis(20)).misses(1000); // never closes the peer
    let opts = ConnOptions::new().heartbeat(beat);
    let client = TcpClient::builder()
        .options(opts)
        .connect(
            listener.local_addr().unwrap(),
            WsCodec::client(),
            |_: &Connection<WsCodec>| {
                AutoReply::new(|_: &Connection<WsCodec>, _: Result<Message, WsError>| {})
            },
        )
        .unwrap();
    let (mut peer, _) = listener.accept().unwrap();
    peer.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut ping = [0u8; 6];
    peer.read_exact(&mut ping[..2]).unwrap();
    assert_eq!(ping[..2], [0x89, 0x80], "an empty ping, masked");
    peer.read_exact(&mut ping[2..]).unwrap(); // the key
    assert_eq!(read_all(&ping)[0], ok(Message::Ping(Vec::new())));
    drop(peer); // the client sees EOF and ends
    client.stop(Duration::from_secs(1));
}

/// A message of `n` fragments of `size` bytes each (byte `i` is `i % 251`), a ping after
/// every fragment but the last.
fn fragmented(n: usize, size: usize) -> (Vec<u8>, Vec<u8>) {
    let payload: Vec<u8> = (0..n * size).map(|i| (i % 251) as u8).collect();
    let mut wire = Vec::new();
    for (i, part) in payload.chunks(size).enumerate() {
        let opcode = if i == 0 { 0x2 } else { 0x0 };
        wire.extend(frame(i == n - 1, opcode, part));
        if i < n - 1 {
            wire.extend(frame(true, 0x9, b"p"));
        }
    }
    (wire, payload)
}

#[test]
fn many_small_fragments_grow_the_message_amortised() {
    // 1024 fragments of 64 bytes, a ping after each: the codec returns at every ping, so the
    // message buffer's capacity can be seen after every fragment. Grown by each fragment's
    // length exactly, it changes 1024 times (a reallocation, a copy of all so far, each);
    // grown amortised, a few times (doubling: about log2(1024)).
    let (n, size) = (1024, 64);
    let (wire, payload) = fragmented(n, size);
    let mut codec = WsCodec::new();
    let mut r = &wire[..];
    let (mut changes, mut last) = (0, 0);
    for _ in 0..n - 1 {
        let got = codec.read(&mut r).unwrap();
        assert_eq!(got, Some(Ok(Message::Ping(b"p".to_vec()))));
        let cap = codec.pending_capacity();
        if cap != last {
            changes += 1;
            last = cap;
        }
    }
    assert!(
        changes <= 16,
        "the buffer grew {changes} times over {n} fragments"
    );
    assert_eq!(
        codec.read(&mut r).unwrap(),
        Some(Ok(Message::Binary(payload)))
    );
    assert_eq!(codec.read(&mut r).unwrap(), None);
}

#[test]
fn amortised_growth_stays_within_the_message_limit() {
    // The buffer never grows past max_message, however it doubles; a fragment that would
    // take the message over it is refused on its header, before anything is allocated for it.
    let limit = 64 * 100 + 10;
    let (n, size) = (100, 64);
    let (wire, payload) = fragmented(n, size);
    let mut codec = WsCodec::new().max_message(limit);
    let mut r = &wire[..];
    for _ in 0..n - 1 {
        assert!(codec.read(&mut r).unwrap().is_some());
        let cap = codec.pending_capacity();
        assert!(cap <= limit, "capacity {cap} over the limit {limit}");
    }
    assert_eq!(
        codec.read(&mut r).unwrap(),
        Some(Ok(Message::Binary(payload)))
    );
    // The same, then one fragment more, 11 bytes: over the limit by one.
    let (mut wire, _) = fragmented(n, size);
    let last = wire.len() - (6 + size);
    wire[last] &= 0x7F; // the last fragment is not the final one
    wire.extend(frame(true, 0x0, &[0; 11]));
    let mut codec = WsCodec::new().max_message(limit);
    let mut r = &wire[..];
    for _ in 0..n - 1 {
        assert!(codec.read(&mut r).unwrap().is_some());
    }
    let got = codec.read(&mut r).unwrap();
    assert!(matches!(&got, Some(Err(e)) if e.code == 1009), "{got:?}");
    assert_eq!(
        r.len(),
        11,
        "refused on the header, the payload left unread"
    );
    assert_eq!(
        codec.pending_capacity(),
        0,
        "nothing kept after the refusal"
    );
}

#[test]
fn mid_message_is_true_between_fragments_only() {
    // A control frame between fragments leaves a message in progress; its last fragment, a
    // message in one frame, and a refusal leave none. `WsUpgrade` answers as its frames do.
    let mut wire = frame(true, 0x9, b"");
    wire.extend(frame(false, 0x1, b"a"));
    wire.extend(frame(true, 0xA, b""));
    wire.extend(frame(true, 0x0, b"b"));
    wire.extend(frame(false, 0x2, &[1]));
    wire.extend(frame(true, 0x9, b""));
    wire.extend(frame(true, 0x1, b"new message inside"));
    let mut codec = WsCodec::new();
    assert!(!codec.mid_message());
    let mut r = &wire[..];
    let mut seen = Vec::new();
    while let Ok(Some(_)) = codec.read(&mut r) {
        seen.push(codec.mid_message());
    }
    // ping, pong (mid), "ab", ping (mid), the protocol error.
    assert_eq!(seen, [false, true, false, true, false]);

    let mut up = WsUpgrade::new();
    let mut head: &[u8] = b"GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n\
        Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
        Sec-WebSocket-Version: 13\r\n\r\n";
    assert!(matches!(
        up.read(&mut head),
        Ok(Some(Incoming::Open { .. }))
    ));
    assert!(!up.mid_message());
    let mut r = &wire[..];
    let mut seen = Vec::new();
    while let Ok(Some(_)) = up.read(&mut r) {
        seen.push(up.mid_message());
    }
    assert_eq!(seen, [false, true, false, true, false]);
}

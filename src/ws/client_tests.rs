//! The client side of the codec: masked frames out, unmasked frames in.

use super::codec::{Message, WsCodec};
use super::error::WsError;
use crate::codec::Codec;

fn round_trip(from: &WsCodec, to: &mut WsCodec, msg: &Message) -> Option<Result<Message, WsError>> {
    let mut wire = Vec::new();
    from.write(msg, &mut wire).unwrap();
    to.read(&mut &wire[..]).unwrap()
}

#[test]
fn client_frames_are_masked_and_the_server_reads_them() {
    let client = WsCodec::client();
    // Over 4096 bytes and not a multiple of 4: the stack buffer's chunks keep the key's phase.
    let big: Vec<u8> = (0..10_001u32).map(|i| (i * 7) as u8).collect();
    for msg in [
        Message::Text("héllo".into()),
        Message::Binary(big),
        Message::Ping(b"p".to_vec()),
    ] {
        let mut wire = Vec::new();
        client.write(&msg, &mut wire).unwrap();
        assert_ne!(wire[1] & 0x80, 0, "mask bit set");
        let got = WsCodec::new().read(&mut &wire[..]).unwrap();
        assert_eq!(got, Some(Ok(msg)));
    }
}

#[test]
fn each_frame_gets_a_fresh_key() {
    let client = WsCodec::client();
    let keys: std::collections::HashSet<Vec<u8>> = (0..50)
        .map(|_| {
            let mut wire = Vec::new();
            client
                .write(&Message::Binary(vec![0; 8]), &mut wire)
                .unwrap();
            wire[2..6].to_vec()
        })
        .collect();
    assert!(keys.len() > 45, "{} distinct keys of 50", keys.len());
}

#[test]
fn client_reads_unmasked_server_frames() {
    let server = WsCodec::new();
    let msg = Message::Binary(vec![9; 70_000]);
    assert_eq!(
        round_trip(&server, &mut WsCodec::client(), &msg),
        Some(Ok(msg))
    );
}

#[test]
fn masked_server_frame_is_1002() {
    // A masked frame, as a client would send it, read by a client.
    let got = round_trip(
        &WsCodec::client(),
        &mut WsCodec::client(),
        &Message::Text("x".into()),
    );
    let err = got.unwrap().unwrap_err();
    assert_eq!(err.code, 1002);
    assert!(err.reason.contains("masked"), "{}", err.reason);
}

//! How write-through hands a message to the socket: how many writes, of how many slices.

use std::io::{self, IoSlice, Write};
use std::time::Duration;

use super::{Attempt, Out};
use crate::conn::idle::{Activity, IdleOptions};
use crate::conn::life::Life;
use crate::conn::metrics::Traffic;
use crate::conn::wire::Wire;
use crate::testing::memory::MemorySocket;
use crate::timer::TimingWheel;

/// Writes one message through `encode` (as the reader thread does, with a send timeout) and
/// returns the slices of each socket write (to an in-memory socket, which takes every write
/// whole), and the bytes written.
fn write_one(
    encode: impl FnOnce(&mut super::SocketWriter<'_>) -> io::Result<()>,
) -> (Vec<usize>, Vec<u8>) {
    let wheel = TimingWheel::new(Duration::from_millis(10));
    let (life, traffic) = (Life::default(), Traffic::default());
    let activity = Activity::new(&IdleOptions::default(), wheel.clone());
    let wire = Wire {
        life: &life,
        activity: &activity,
        traffic: &traffic,
        wheel: &wheel,
    };
    let socket = MemorySocket::default();
    let out = Out::default();
    let attempt = out.try_write(
        wire,
        &socket,
        Some(Duration::from_secs(1)),
        || None,
        || unreachable!("not corked: nothing waits for a timer"),
        encode,
    );
    assert!(matches!(attempt, Attempt::Written { deferred: false }));
    assert!(out.lock().is_empty(), "nothing left gathered");
    let state = std::mem::take(&mut *socket.lock());
    (state.slices, state.outbound)
}

#[test]
fn a_small_frame_in_pieces_is_one_write_of_one_buffer() {
    let payload = vec![7u8; 4096];
    // A header and its payload in one vectored write (`LengthDelimited`'s way)...
    let (writes, bytes) = write_one(|w| {
        w.write_vectored(&[IoSlice::new(b"\0\0\x10\0"), IoSlice::new(&payload)])
            .map(drop)
    });
    assert_eq!(
        writes,
        [1],
        "one send(2) of one buffer, not a sendmsg of two"
    );
    assert_eq!(&bytes[..4], b"\0\0\x10\0");
    assert_eq!(&bytes[4..], &payload[..]);
    // ...or in two writes: the same.
    let (writes, bytes) = write_one(|w| {
        w.write_all(b"\0\0\x10\0")?;
        w.write_all(&payload)
    });
    assert_eq!(writes, [1]);
    assert_eq!(bytes.len(), 4100);
}

#[test]
fn a_large_frame_goes_out_as_its_pieces_uncopied() {
    let payload = vec![7u8; 64 * 1024];
    let (writes, bytes) = write_one(|w| {
        w.write_all(b"\0\x01\0\0")?;
        w.write_all(&payload)
    });
    assert_eq!(writes, [2], "one sendmsg of the header and the payload");
    assert_eq!(bytes.len(), 4 + payload.len());
}

#[test]
fn a_lone_buffer_is_one_write_at_any_size() {
    for len in [100, 4096, 64 * 1024] {
        let payload = vec![1u8; len];
        let (writes, bytes) = write_one(|w| w.write_all(&payload));
        assert_eq!(writes, [1], "{len} bytes");
        assert_eq!(bytes, payload);
    }
}

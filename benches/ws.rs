//! WebSocket masking (RFC 6455, section 5.3): `ws::apply_mask`, a `u64` at a time, against
//! the byte-at-a-time loop it replaces; and whole frames written by the client side of the
//! codec (a fresh key, the payload masked through a stack buffer) against the server side
//! (unmasked); and a 4 MiB message read by the server side whole in one frame against the same
//! message in 64-byte fragments (the message buffer grown amortised, not once per fragment).
//! Run: `cargo bench --bench ws`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use threadnet::ws::{apply_mask, Message, WsCodec};
use threadnet::Codec;

fn bytewise(data: &mut [u8], key: [u8; 4]) {
    for (i, b) in data.iter_mut().enumerate() {
        *b ^= key[i % 4];
    }
}

fn mask(c: &mut Criterion) {
    let key = [0x37, 0xfa, 0x21, 0x3d];
    for len in [125usize, 4096, 64 * 1024] {
        let mut g = c.benchmark_group(format!("ws_mask_{len}"));
        g.throughput(Throughput::Bytes(len as u64));
        let mut data = vec![0xA5u8; len];
        g.bench_function("word_at_a_time", |b| {
            b.iter(|| apply_mask(black_box(&mut data), black_box(key)))
        });
        g.bench_function("bytewise", |b| {
            b.iter(|| bytewise(black_box(&mut data), black_box(key)))
        });
        g.finish();
    }
}

fn write_frame(c: &mut Criterion) {
    for len in [125usize, 4096, 64 * 1024] {
        let mut g = c.benchmark_group(format!("ws_write_{len}"));
        g.throughput(Throughput::Bytes(len as u64));
        let msg = Message::Binary(vec![0xA5u8; len]);
        let mut out = Vec::with_capacity(len + 14);
        for (name, codec) in [
            ("client_masked", WsCodec::client()),
            ("server_unmasked", WsCodec::new()),
        ] {
            g.bench_function(name, |b| {
                b.iter(|| {
                    out.clear();
                    codec.write(black_box(&msg), &mut out).unwrap();
                    black_box(&out);
                })
            });
        }
        g.finish();
    }
}

/// `payload` as client frames (masked) of at most `size` bytes each: one message.
fn client_frames(payload: &[u8], size: usize) -> Vec<u8> {
    let key = [0x37, 0xfa, 0x21, 0x3d];
    let parts: Vec<&[u8]> = payload.chunks(size).collect();
    let mut wire = Vec::with_capacity(payload.len() + parts.len() * 14);
    for (i, part) in parts.iter().enumerate() {
        let fin = if i == parts.len() - 1 { 0x80 } else { 0 };
        wire.push(fin | if i == 0 { 0x2 } else { 0x0 });
        match part.len() {
            n if n < 126 => wire.push(0x80 | n as u8),
            n if n <= 0xFFFF => {
                wire.push(0x80 | 126);
                wire.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                wire.push(0x80 | 127);
                wire.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        wire.extend_from_slice(&key);
        let start = wire.len();
        wire.extend_from_slice(part);
        apply_mask(&mut wire[start..], key);
    }
    wire
}

fn read_fragmented(c: &mut Criterion) {
    let len = 4 * 1024 * 1024;
    let payload = vec![0xA5u8; len];
    let mut g = c.benchmark_group("ws_read_4MiB");
    g.throughput(Throughput::Bytes(len as u64));
    g.sample_size(20);
    for (name, size) in [("one_frame", len), ("fragments_64", 64)] {
        let wire = client_frames(&payload, size);
        let codec = WsCodec::new().max_frame(len);
        g.bench_function(name, |b| {
            b.iter(|| {
                let got = codec.clone().read(&mut black_box(&wire[..])).unwrap();
                assert!(matches!(got, Some(Ok(Message::Binary(ref m))) if m.len() == len));
                black_box(got);
            })
        });
    }
    g.finish();
}

criterion_group!(benches, mask, write_frame, read_fragmented);
criterion_main!(benches);

//! WebSocket masking (RFC 6455, section 5.3): `ws::apply_mask`, a `u64` at a time, against
//! the byte-at-a-time loop it replaces; and whole frames written by the client side of the
//! codec (a fresh key, the payload masked through a stack buffer) against the server side
//! (unmasked). Run: `cargo bench --bench ws`.

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

criterion_group!(benches, mask, write_frame);
criterion_main!(benches);

//! Polling payload encode/decode throughput.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)] // test code: a panic is a failed assertion

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use iocluster_engineio::Message;
use iocluster_engineio::codec::{decode_payload, encode_payload};

fn messages(count: usize, size: usize) -> Vec<Message> {
    (0..count)
        .map(|i| {
            if i % 4 == 3 {
                Message::binary(vec![i as u8; size])
            } else {
                Message::text(&"x".repeat(size))
            }
        })
        .collect()
}

fn payload(c: &mut Criterion) {
    let mut group = c.benchmark_group("polling_payload");
    for &(count, size) in &[(1usize, 32usize), (16, 32), (16, 1024), (1, 65536)] {
        let input = messages(count, size);
        let encoded = encode_payload(&input);
        group.throughput(Throughput::Bytes(encoded.len() as u64));
        let id = format!("{count}x{size}B");
        group.bench_with_input(BenchmarkId::new("encode", &id), &input, |b, input| {
            b.iter(|| encode_payload(input))
        });
        group.bench_with_input(BenchmarkId::new("decode", &id), &encoded, |b, encoded| {
            b.iter(|| decode_payload(encoded.as_bytes()))
        });
    }
    group.finish();
}

criterion_group!(benches, payload);
criterion_main!(benches);

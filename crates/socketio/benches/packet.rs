//! Socket.IO packet encode/decode: a small event, an event with a 1 KiB
//! string, and a binary event with one 64 KiB attachment.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)] // test code: a panic is a failed assertion

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use iocluster_socketio::parser::{Decoder, Encoded, Packet, PacketType, encode};
use serde_json::json;

/// The benchmarked packets, named.
fn packets() -> Vec<(&'static str, Packet)> {
    let event = |data, attachments| Packet {
        kind: PacketType::Event,
        nsp: "/".to_owned(),
        id: None,
        data: Some(data),
        attachments,
    };
    vec![
        ("small_event", event(json!(["message", "hello"]), vec![])),
        (
            "event_1KiB_string",
            event(json!(["message", "x".repeat(1024)]), vec![]),
        ),
        (
            "binary_event_64KiB",
            event(
                json!(["file", {"_placeholder": true, "num": 0}]),
                vec![Bytes::from(vec![7u8; 64 * 1024])],
            ),
        ),
    ]
}

/// Decodes one encoded packet with a fresh decoder, as a new connection would.
fn decode(encoded: &Encoded) -> Option<Packet> {
    let mut decoder = Decoder::default();
    let mut packet = decoder.decode_text(encoded.text.as_str()).ok()?;
    for attachment in &encoded.attachments {
        packet = decoder.decode_binary(attachment.clone()).ok()?;
    }
    packet
}

fn packet(c: &mut Criterion) {
    let mut group = c.benchmark_group("socketio_packet");
    for (name, packet) in packets() {
        let encoded = encode(&packet);
        let decoded = decode(&encoded).expect("the encoded packet decodes");
        assert_eq!(decoded.data, packet.data);
        let bytes: usize = encoded.messages().map(|m| m.len()).sum();
        group.throughput(Throughput::Bytes(bytes as u64));
        group.bench_with_input(BenchmarkId::new("encode", name), &packet, |b, packet| {
            b.iter(|| encode(packet))
        });
        group.bench_with_input(BenchmarkId::new("decode", name), &encoded, |b, encoded| {
            b.iter(|| decode(encoded))
        });
    }
    group.finish();
}

criterion_group!(benches, packet);
criterion_main!(benches);

//! Property tests: every envelope and control frame a process writes, the
//! other reads back the same.

use bytes::Bytes;
use iocluster_socketio::adapter::{BroadcastFlags, BroadcastOptions};
use proptest::prelude::*;
use serde_json::{Map, Value};

use crate::adapter::envelope::{self, Header};
use crate::control::Frame;

/// JSON values as the adapter carries them. Floats are multiples of 1/8
/// below a million: serde_json reads every float back exactly only with its
/// `float_roundtrip` feature, which we do not use, and these it always
/// does.
fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-8_000_000i32..8_000_000).prop_map(|n| Value::from(f64::from(n) / 8.0)),
        any::<String>().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::vec((any::<String>(), inner), 0..6)
                .prop_map(|entries| Value::Object(entries.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn rooms() -> impl Strategy<Value = Vec<String>> {
    proptest::collection::vec(any::<String>(), 0..4)
}

fn opts() -> impl Strategy<Value = BroadcastOptions> {
    (rooms(), rooms(), any::<(bool, bool, Option<u64>)>()).prop_map(
        |(rooms, except, (local, volatile, timeout))| BroadcastOptions {
            rooms,
            except,
            flags: BroadcastFlags {
                local,
                volatile,
                timeout,
            },
        },
    )
}

fn args() -> impl Strategy<Value = Vec<Value>> {
    proptest::collection::vec(json(), 0..4)
}

/// Every kind of header (`FetchSocketsResponse` without sockets: a socket's
/// handshake is tested where it is serialised).
fn header() -> impl Strategy<Value = Header> {
    let nsp = any::<String>;
    prop_oneof![
        (nsp(), opts(), proptest::option::of(any::<String>()))
            .prop_map(|(nsp, opts, offset)| Header::Broadcast { nsp, opts, offset }),
        (nsp(), opts(), any::<u64>(), json()).prop_map(|(nsp, opts, request, data)| {
            Header::BroadcastWithAck {
                nsp,
                opts,
                request,
                data,
            }
        }),
        any::<(u64, usize)>()
            .prop_map(|(request, count)| Header::BroadcastClientCount { request, count }),
        (any::<u64>(), args()).prop_map(|(request, args)| Header::BroadcastAck { request, args }),
        (nsp(), opts(), rooms()).prop_map(|(nsp, opts, rooms)| Header::SocketsJoin {
            nsp,
            opts,
            rooms
        }),
        (nsp(), opts(), rooms()).prop_map(|(nsp, opts, rooms)| Header::SocketsLeave {
            nsp,
            opts,
            rooms
        }),
        (nsp(), opts(), any::<bool>())
            .prop_map(|(nsp, opts, close)| { Header::DisconnectSockets { nsp, opts, close } }),
        (nsp(), opts(), any::<u64>()).prop_map(|(nsp, opts, request)| Header::FetchSockets {
            nsp,
            opts,
            request
        }),
        any::<u64>().prop_map(|request| Header::FetchSocketsResponse {
            request,
            sockets: Vec::new()
        }),
        (nsp(), proptest::option::of(any::<u64>()), args())
            .prop_map(|(nsp, request, args)| Header::ServerSideEmit { nsp, request, args }),
        any::<u64>().prop_map(|request| Header::Absent { request }),
        (any::<u64>(), args())
            .prop_map(|(request, args)| Header::ServerSideEmitResponse { request, args }),
    ]
}

fn bytes(max: usize) -> impl Strategy<Value = Bytes> {
    proptest::collection::vec(any::<u8>(), 0..max).prop_map(Bytes::from)
}

/// A frame as `from_worker` frames are read: relays from the master carry
/// no flags, and an empty recovery record reads as none.
fn frame(from_worker: bool) -> impl Strategy<Value = Frame> {
    prop_oneof![
        bytes(64).prop_map(Frame::Control),
        (any::<u32>(), any::<u8>(), bytes(64)).prop_map(move |(peer, flags, payload)| {
            Frame::Relay {
                peer,
                flags: if from_worker { flags } else { 0 },
                payload,
            }
        }),
        (
            any::<u64>(),
            proptest::option::of(bytes(64).prop_filter("empty reads as none", |b| !b.is_empty())),
            proptest::collection::vec(bytes(32), 0..6),
        )
            .prop_map(|(request, record, packets)| Frame::Restored {
                request,
                record,
                packets
            }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn envelopes_read_back_whole_and_header_only(
        header in header(),
        parts in proptest::collection::vec(bytes(64), 0..6),
    ) {
        let encoded = envelope::encode(&header, &parts);
        prop_assert_eq!(envelope::decode_header(&encoded), Ok(header.clone()));
        prop_assert_eq!(envelope::decode(encoded), Ok((header, parts)));
    }

    #[test]
    fn frames_read_back_in_both_directions(
        (from_worker, frame) in any::<bool>().prop_flat_map(|w| (Just(w), frame(w))),
    ) {
        let encoded = frame.clone().encode(from_worker);
        prop_assert_eq!(Frame::decode(encoded, from_worker), Some(frame));
    }
}

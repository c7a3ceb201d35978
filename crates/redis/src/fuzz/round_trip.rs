//! Property tests: every value and message we publish, a reader (ours, as
//! notepack.io's) reads back the same.

use bytes::Bytes;
use proptest::prelude::*;
use serde_json::{Map, Value};

use crate::adapter::cluster::wire::{Item, MessageType};
use crate::adapter::sharded::wire as sharded_wire;
use crate::msgpack;
use crate::wire::{self, BroadcastParts, OptsOrder};

/// A value of notepack's subset, with its binaries apart.
#[derive(Debug, Clone)]
enum Node {
    Nil,
    Bool(bool),
    Int(i64),
    UInt(u64),
    /// Not integral: integral floats read back as integers, as in
    /// JavaScript.
    Float(f64),
    Str(String),
    Bin(Vec<u8>),
    Array(Vec<Node>),
    Map(Vec<(String, Node)>),
}

/// Any float that is finite and not integral: what msgpack carries as a
/// float.
fn any_float() -> impl Strategy<Value = f64> + Clone {
    any::<f64>().prop_filter("integral or not finite", |f| {
        f.is_finite() && f.fract() != 0.0
    })
}

/// Odd multiples of 1/8 below a million: floats that JSON carries exactly
/// (serde_json reads every float back exactly only with its
/// `float_roundtrip` feature, which we do not use).
fn json_float() -> impl Strategy<Value = f64> + Clone {
    (-4_000_000i32..4_000_000).prop_map(|n| f64::from(2 * n + 1) / 8.0)
}

fn node(float: impl Strategy<Value = f64> + Clone + 'static) -> impl Strategy<Value = Node> {
    let leaf = prop_oneof![
        Just(Node::Nil),
        any::<bool>().prop_map(Node::Bool),
        any::<i64>().prop_map(Node::Int),
        any::<u64>().prop_map(Node::UInt),
        float.prop_map(Node::Float),
        any::<String>().prop_map(Node::Str),
        proptest::collection::vec(any::<u8>(), 0..300).prop_map(Node::Bin),
    ];
    leaf.prop_recursive(4, 40, 18, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..18).prop_map(Node::Array),
            proptest::collection::vec((any::<String>(), inner), 0..18).prop_map(Node::Map),
        ]
    })
}

/// The JSON value and attachments `node` stands for, placeholders numbered
/// in the order the encoder writes them (a map's keys sorted, as
/// serde_json's map keeps them).
fn to_value(node: Node, attachments: &mut Vec<Bytes>) -> Value {
    match node {
        Node::Nil => Value::Null,
        Node::Bool(b) => Value::Bool(b),
        Node::Int(n) => Value::from(n),
        Node::UInt(n) => Value::from(n),
        Node::Float(f) => Value::from(f),
        Node::Str(s) => Value::String(s),
        Node::Bin(data) => {
            attachments.push(Bytes::from(data));
            iocluster_socketio::placeholder(attachments.len() - 1)
        }
        Node::Array(items) => Value::Array(
            items
                .into_iter()
                .map(|item| to_value(item, attachments))
                .collect(),
        ),
        Node::Map(entries) => {
            let sorted: std::collections::BTreeMap<_, _> = entries.into_iter().collect();
            Value::Object(
                sorted
                    .into_iter()
                    .map(|(key, value)| (key, to_value(value, attachments)))
                    .collect::<Map<_, _>>(),
            )
        }
    }
}

fn value() -> impl Strategy<Value = (Value, Vec<Bytes>)> {
    node(any_float()).prop_map(|node| {
        let mut attachments = Vec::new();
        let value = to_value(node, &mut attachments);
        (value, attachments)
    })
}

/// Event arguments: a name, then values (floats those JSON carries
/// exactly, since messages without binaries are JSON).
fn event() -> impl Strategy<Value = (Value, Vec<Bytes>)> {
    (
        "[a-z]{1,10}",
        proptest::collection::vec(node(json_float()), 0..4),
    )
        .prop_map(|(name, args)| {
            let mut attachments = Vec::new();
            let mut items = vec![Value::String(name)];
            items.extend(args.into_iter().map(|arg| to_value(arg, &mut attachments)));
            (Value::Array(items), attachments)
        })
}

fn rooms() -> impl Strategy<Value = Vec<String>> {
    proptest::collection::vec(any::<String>(), 0..4)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn msgpack_values_read_back_with_their_binaries((value, attachments) in value()) {
        let bytes = msgpack::encode(&value, &attachments);
        prop_assert_eq!(msgpack::decode(&bytes), Ok((value, attachments)));
    }

    #[test]
    fn broadcasts_read_back_as_published(
        uid in "[A-Za-z0-9]{6}",
        nsp in "/[a-z]{0,8}",
        (data, attachments) in event(),
        rooms in rooms(),
        except in rooms(),
        volatile in any::<bool>(),
        timeout in proptest::option::of(any::<u32>()),
        emitter in any::<bool>(),
    ) {
        let mut flags = Vec::new();
        if volatile {
            flags.push(("volatile", Value::Bool(true)));
        }
        if let Some(timeout) = timeout {
            flags.push(("timeout", Value::from(timeout)));
        }
        let parts = BroadcastParts {
            nsp: &nsp,
            data: &data,
            attachments: &attachments,
            rooms: &rooms,
            except: &except,
            flags: &flags,
        };
        let order = if emitter { OptsOrder::Emitter } else { OptsOrder::Adapter };
        let bytes = Bytes::from(wire::broadcast_message(&uid, &parts, order));
        let incoming = wire::decode_broadcast(&bytes).unwrap();
        prop_assert_eq!(incoming.uid, uid);
        prop_assert_eq!(incoming.packet.nsp, nsp);
        prop_assert_eq!(incoming.packet.data, Some(data));
        prop_assert_eq!(incoming.packet.attachments, attachments);
        prop_assert_eq!(incoming.opts.rooms, rooms);
        prop_assert_eq!(incoming.opts.except, except);
        prop_assert_eq!(incoming.opts.flags.volatile, volatile);
        prop_assert_eq!(incoming.opts.flags.timeout, timeout.map(u64::from));
    }

    #[test]
    fn sharded_messages_read_back_in_json_and_in_msgpack(
        uid in "[A-Za-z0-9]{6}",
        nsp in "/[a-z]{0,8}",
        (data, attachments) in event(),
        request in "[0-9a-f]{16}",
    ) {
        let message = sharded_wire::encode(
            MessageType::ServerSideEmit,
            Some(Item::Map(vec![("requestId", Item::Str(&request)), ("packet", Item::Json(&data))])),
            &uid,
            &nsp,
            &attachments,
        );
        let incoming = sharded_wire::decode(&Bytes::from(message)).unwrap();
        prop_assert_eq!(incoming.kind, MessageType::ServerSideEmit);
        prop_assert_eq!(incoming.str("requestId"), Some(request.as_str()));
        prop_assert_eq!(incoming.uid, uid);
        prop_assert_eq!(incoming.nsp, nsp);
        prop_assert_eq!(&incoming.data["packet"], &data);
        prop_assert_eq!(incoming.attachments, attachments);
    }
}

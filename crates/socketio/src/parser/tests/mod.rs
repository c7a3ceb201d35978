//! Encoder and decoder together: the protocol's examples both ways. The
//! refusals are in `malformed`, inputs that must not panic in `robustness`.

mod malformed;
mod robustness;

use bytes::Bytes;
use serde_json::json;

use super::{Decoder, Packet, PacketType, encode};

/// Every example of the protocol document and of the sample session, with
/// the attachments that follow it.
fn spec_examples() -> Vec<(&'static str, Vec<Bytes>)> {
    let buffer = || Bytes::from_static(&[1, 2, 3, 4]);
    vec![
        ("0", vec![]),
        ("0/admin,", vec![]),
        (r#"0/admin,{"sid":"oSO0OpakMV_3jnilAAAA"}"#, vec![]),
        (r#"0/admin,{"token":"123"}"#, vec![]),
        (r#"0{"sid":"wZX3oN0bSVIhsaknAAAI"}"#, vec![]),
        (r#"0/admin,{"sid":"-G5j-67EZFp-q59rADQM"}"#, vec![]),
        (r#"4{"message":"Not authorized"}"#, vec![]),
        (r#"2["foo"]"#, vec![]),
        (r#"2/admin,["bar"]"#, vec![]),
        (r#"2["hey","Jude"]"#, vec![]),
        (r#"2["hello"]"#, vec![]),
        (
            r#"51-["baz",{"_placeholder":true,"num":0}]"#,
            vec![buffer()],
        ),
        (
            r#"52-/admin,["baz",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#,
            vec![Bytes::from_static(&[1, 2]), Bytes::from_static(&[3, 4])],
        ),
        (r#"212["foo"]"#, vec![]),
        ("312[]", vec![]),
        (r#"2/admin,13["foo"]"#, vec![]),
        (r#"3/admin,13["bar"]"#, vec![]),
        (
            r#"51-14["foo",{"_placeholder":true,"num":0}]"#,
            vec![buffer()],
        ),
        (r#"314["bar"]"#, vec![]),
        (r#"215["foo"]"#, vec![]),
        (
            r#"61-15["bar",{"_placeholder":true,"num":0}]"#,
            vec![buffer()],
        ),
        (r#"2/admin,1["tellme"]"#, vec![]),
        (
            r#"61-/admin,1[{"_placeholder":true,"num":0}]"#,
            vec![buffer()],
        ),
        ("1", vec![]),
        ("1/admin,", vec![]),
        // The brief's own examples.
        (r#"0/admin,{"token":"x"}"#, vec![]),
        (r#"2["hello",1]"#, vec![]),
        (r#"312["bar"]"#, vec![]),
        (
            r#"61-/admin,15[{"_placeholder":true,"num":0}]"#,
            vec![buffer()],
        ),
        (r#"4"Not authorized""#, vec![]),
    ]
}

/// Feeds a text packet and its attachments to a fresh decoder.
fn decode_all(text: &str, attachments: &[Bytes]) -> Result<Option<Packet>, super::ParseError> {
    let mut decoder = Decoder::default();
    let mut packet = decoder.decode_text(text)?;
    for attachment in attachments {
        packet = decoder.decode_binary(attachment.clone())?;
    }
    Ok(packet)
}

#[test]
fn every_spec_example_decodes_and_encodes_back_to_the_same_text() {
    for (text, attachments) in spec_examples() {
        let packet = match decode_all(text, &attachments) {
            Ok(Some(packet)) => packet,
            other => panic!("{text:?} gave {other:?}"),
        };
        assert_eq!(packet.attachments, attachments, "{text}");
        let encoded = encode(&packet);
        assert_eq!(encoded.text.as_str(), text);
        assert_eq!(encoded.attachments, attachments, "{text}");
        assert_eq!(encoded.messages().len(), 1 + attachments.len());
    }
}

#[test]
fn spec_packets_encode_to_the_spec_text_and_decode_back() {
    let placeholder = json!({"_placeholder": true, "num": 0});
    let cases = [
        (
            Packet {
                kind: PacketType::Connect,
                nsp: "/".into(),
                id: None,
                data: None,
                attachments: vec![],
            },
            "0",
        ),
        (
            Packet {
                kind: PacketType::ConnectError,
                nsp: "/".into(),
                id: None,
                data: Some(json!({"message": "Not authorized"})),
                attachments: vec![],
            },
            r#"4{"message":"Not authorized"}"#,
        ),
        (
            Packet {
                kind: PacketType::Event,
                nsp: "/admin".into(),
                id: Some(13),
                data: Some(json!(["foo"])),
                attachments: vec![],
            },
            r#"2/admin,13["foo"]"#,
        ),
        (
            Packet {
                kind: PacketType::BinaryEvent,
                nsp: "/".into(),
                id: None,
                data: Some(json!(["baz", placeholder])),
                attachments: vec![Bytes::from_static(&[1, 2, 3, 4])],
            },
            r#"51-["baz",{"_placeholder":true,"num":0}]"#,
        ),
        (
            Packet {
                kind: PacketType::BinaryAck,
                nsp: "/admin".into(),
                id: Some(15),
                data: Some(json!([placeholder])),
                attachments: vec![Bytes::from_static(&[1, 2, 3, 4])],
            },
            r#"61-/admin,15[{"_placeholder":true,"num":0}]"#,
        ),
        (
            Packet {
                kind: PacketType::Disconnect,
                nsp: "/admin".into(),
                id: None,
                data: None,
                attachments: vec![],
            },
            "1/admin,",
        ),
    ];
    for (packet, text) in cases {
        let encoded = encode(&packet);
        assert_eq!(encoded.text.as_str(), text);
        let decoded = decode_all(encoded.text.as_str(), &encoded.attachments);
        assert_eq!(decoded.ok().flatten(), Some(packet), "{text}");
    }
}

#[test]
fn every_packet_type_digit_round_trips() {
    for kind in PacketType::ALL {
        assert_eq!(PacketType::from_char(kind.to_char()), Some(kind));
    }
    assert_eq!(PacketType::from_char('7'), None);
    assert_eq!(PacketType::ConnectError.to_string(), "CONNECT_ERROR");
}

//! Text packets the decoder must refuse, each for its own reason, and the
//! edge cases Node accepts that it must accept too.

use serde_json::json;

use crate::parser::{Decoder, DecoderLimits, Packet, PacketType, ParseError};

fn decode(text: &str) -> Result<Option<Packet>, ParseError> {
    Decoder::default().decode_text(text)
}

fn refusal(text: &str) -> ParseError {
    match decode(text) {
        Err(err) => err,
        Ok(packet) => panic!("{text:?} accepted as {packet:?}"),
    }
}

fn packet(text: &str) -> Packet {
    match decode(text) {
        Ok(Some(packet)) => packet,
        other => panic!("{text:?} gave {other:?}"),
    }
}

#[test]
fn namespace_without_comma_at_the_end_is_the_namespace() {
    let connect = packet("0/admin");
    assert_eq!(
        (connect.kind, connect.nsp.as_str()),
        (PacketType::Connect, "/admin")
    );
    assert_eq!(connect.data, None);
}

#[test]
fn connect_with_auth_payload() {
    let connect = packet(r#"0/admin,{"token":"x"}"#);
    assert_eq!(connect.data, Some(json!({"token": "x"})));
}

#[test]
fn event_name_may_be_a_number_and_whitespace_around_json_is_allowed() {
    assert_eq!(packet("2[42]").data, Some(json!([42])));
    assert_eq!(
        packet(" 2 [ \"a\" ] ".trim_start()).data,
        Some(json!(["a"]))
    );
}

#[test]
fn empty_and_unknown_types_are_refused() {
    assert!(matches!(refusal(""), ParseError::Empty));
    assert!(matches!(refusal("7[\"a\"]"), ParseError::UnknownType('7')));
    assert!(matches!(refusal("x"), ParseError::UnknownType('x')));
    assert!(matches!(refusal("é"), ParseError::UnknownType('é')));
    assert!(matches!(refusal("-1"), ParseError::UnknownType('-')));
}

#[test]
fn malformed_attachment_counts_are_refused() {
    assert!(matches!(
        refusal(r#"5["a"]"#),
        ParseError::MissingAttachmentCount
    ));
    assert!(matches!(
        refusal(r#"5-["a"]"#),
        ParseError::MissingAttachmentCount
    ));
    assert!(matches!(
        refusal(r#"5x-["a"]"#),
        ParseError::MissingAttachmentCount
    ));
    assert!(matches!(
        refusal(r#"51["a"]"#),
        ParseError::UnterminatedAttachmentCount
    ));
    assert!(matches!(
        refusal("61"),
        ParseError::UnterminatedAttachmentCount
    ));
    assert!(matches!(refusal(r#"50-["a"]"#), ParseError::NoAttachments));
}

#[test]
fn attachment_count_over_the_limit_is_refused() {
    let mut decoder = Decoder::new(DecoderLimits {
        max_attachments: 2,
        ..DecoderLimits::default()
    });
    assert!(decoder.decode_text(r#"52-["a"]"#).is_ok());
    let mut decoder = Decoder::new(DecoderLimits {
        max_attachments: 2,
        ..DecoderLimits::default()
    });
    assert!(matches!(
        decoder.decode_text(r#"53-["a"]"#),
        Err(ParseError::TooManyAttachments { max: 2 })
    ));
    assert!(matches!(
        refusal(r#"599999999999999999999999999-["a"]"#),
        ParseError::TooManyAttachments { max: 64 }
    ));
    assert!(matches!(
        refusal(r#"565-["a"]"#),
        ParseError::TooManyAttachments { max: 64 }
    ));
}

#[test]
fn attachments_on_non_binary_types_are_refused() {
    for (text, kind) in [
        (r#"21-["a"]"#, PacketType::Event),
        ("31-[]", PacketType::Ack),
        ("01-{}", PacketType::Connect),
        ("11-", PacketType::Disconnect),
        (r#"41-"no""#, PacketType::ConnectError),
    ] {
        assert!(
            matches!(refusal(text), ParseError::AttachmentsOnNonBinaryType(k) if k == kind),
            "{text}"
        );
    }
}

#[test]
fn namespace_running_into_the_payload_is_refused() {
    assert!(matches!(
        refusal(r#"2/admin["foo"]"#),
        ParseError::UnterminatedNamespace
    ));
    assert!(matches!(
        refusal(r#"0/admin{"token":"x"}"#),
        ParseError::UnterminatedNamespace
    ));
    assert!(matches!(
        refusal(r#"2/admin13["foo"]"#),
        ParseError::UnterminatedNamespace
    ));
}

#[test]
fn ack_id_over_u64_is_refused() {
    assert!(matches!(
        refusal("318446744073709551616[]"),
        ParseError::AckIdOverflow
    ));
    assert!(matches!(
        refusal(&format!("2{}[\"a\"]", "9".repeat(10_000))),
        ParseError::AckIdOverflow
    ));
    assert_eq!(packet("318446744073709551615[]").id, Some(u64::MAX));
}

#[test]
fn invalid_json_and_trailing_garbage_are_refused() {
    for text in [
        r#"2["a""#,
        r#"2["a"]x"#,
        r#"2["a"]["b"]"#,
        "0{",
        "2 ",
        "4'no'",
        r#"2["a",]"#,
        "0{}}",
    ] {
        assert!(
            matches!(refusal(text), ParseError::InvalidJson(_)),
            "{text}"
        );
    }
}

#[test]
fn payloads_of_the_wrong_shape_are_refused() {
    assert!(matches!(
        refusal("0[]"),
        ParseError::ConnectPayloadNotObject
    ));
    assert!(matches!(
        refusal(r#"0"x""#),
        ParseError::ConnectPayloadNotObject
    ));
    assert!(matches!(
        refusal("1{}"),
        ParseError::UnexpectedDisconnectPayload
    ));
    assert!(matches!(
        refusal("1/admin,null"),
        ParseError::UnexpectedDisconnectPayload
    ));
    assert!(matches!(
        refusal("4[]"),
        ParseError::InvalidConnectErrorPayload
    ));
    assert!(matches!(
        refusal("4"),
        ParseError::MissingPayload(PacketType::ConnectError)
    ));
    assert!(matches!(refusal("2[]"), ParseError::InvalidEventPayload));
    assert!(matches!(refusal("2{}"), ParseError::InvalidEventPayload));
    assert!(matches!(
        refusal("2[null]"),
        ParseError::InvalidEventPayload
    ));
    assert!(matches!(
        refusal("2"),
        ParseError::MissingPayload(PacketType::Event)
    ));
    assert!(matches!(
        refusal("2/admin,12"),
        ParseError::MissingPayload(PacketType::Event)
    ));
    assert!(
        matches!(refusal(r#"2["disconnect"]"#), ParseError::ReservedEventName(name) if name == "disconnect")
    );
    assert!(matches!(refusal("3{}"), ParseError::AckPayloadNotArray));
    assert!(matches!(
        refusal("312"),
        ParseError::MissingPayload(PacketType::Ack)
    ));
    assert!(matches!(
        refusal(r#"51-{"a":1}"#),
        ParseError::InvalidEventPayload
    ));
    assert!(matches!(
        refusal("61-"),
        ParseError::MissingPayload(PacketType::BinaryAck)
    ));
}

#[test]
fn nesting_ten_thousand_deep_is_refused_without_overflowing_the_stack() {
    let open = format!("2{}", "[".repeat(10_000));
    assert!(matches!(refusal(&open), ParseError::TooDeep { max: 64 }));
    let closed = format!("2[\"a\",{}{}]", "[".repeat(10_000), "]".repeat(10_000));
    assert!(matches!(refusal(&closed), ParseError::TooDeep { max: 64 }));
    let objects = format!("0{}1{}", "{\"a\":".repeat(10_000), "}".repeat(10_000));
    assert!(matches!(refusal(&objects), ParseError::TooDeep { max: 64 }));
}

#[test]
fn nesting_up_to_the_limit_is_accepted() {
    let limits = DecoderLimits {
        max_nesting: 4,
        ..DecoderLimits::default()
    };
    let ok = r#"2["a",[[[1]]]]"#;
    assert!(Decoder::new(limits).decode_text(ok).is_ok());
    let deep = r#"2["a",[[[[1]]]]]"#;
    assert!(matches!(
        Decoder::new(limits).decode_text(deep),
        Err(ParseError::TooDeep { max: 4 })
    ));
}

#[test]
fn nesting_limit_above_serde_json_limit_still_cannot_overflow() {
    let limits = DecoderLimits {
        max_nesting: 100_000,
        ..DecoderLimits::default()
    };
    let text = format!("2[\"a\",{}{}]", "[".repeat(10_000), "]".repeat(10_000));
    assert!(matches!(
        Decoder::new(limits).decode_text(&text),
        Err(ParseError::InvalidJson(_))
    ));
}

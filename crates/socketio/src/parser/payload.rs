//! What each packet type may carry, as Node's socket.io-parser checks it, and
//! the placeholders that stand for binary attachments.

use serde_json::Value;

use super::{PacketType, ParseError};

/// Event names with a meaning of their own on one side or the other; Node
/// refuses events that use them.
const RESERVED_EVENTS: [&str; 6] = [
    "connect",
    "connect_error",
    "disconnect",
    "disconnecting",
    "newListener",
    "removeListener",
];

/// Checks the payload of a `kind` packet, `None` when it has none.
///
/// Same rules as Node's `isPayloadValid`, and, as the protocol requires,
/// events and acks must have a payload. A CONNECT_ERROR must too, as Node's
/// encoder requires (its decoder lets an empty one through).
pub(super) fn validate(kind: PacketType, data: Option<&Value>) -> Result<(), ParseError> {
    match (kind, data) {
        (PacketType::Connect, None | Some(Value::Object(_))) => Ok(()),
        (PacketType::Connect, Some(_)) => Err(ParseError::ConnectPayloadNotObject),
        (PacketType::Disconnect, None) => Ok(()),
        (PacketType::Disconnect, Some(_)) => Err(ParseError::UnexpectedDisconnectPayload),
        (PacketType::ConnectError, Some(Value::String(_) | Value::Object(_))) => Ok(()),
        (PacketType::ConnectError, Some(_)) => Err(ParseError::InvalidConnectErrorPayload),
        (PacketType::Event | PacketType::BinaryEvent, Some(data)) => validate_event(data),
        (PacketType::Ack | PacketType::BinaryAck, Some(Value::Array(_))) => Ok(()),
        (PacketType::Ack | PacketType::BinaryAck, Some(_)) => Err(ParseError::AckPayloadNotArray),
        (kind, None) => Err(ParseError::MissingPayload(kind)),
    }
}

/// An event is a non-empty array whose first element, the event name, is a
/// number or a string that is not reserved.
fn validate_event(data: &Value) -> Result<(), ParseError> {
    match data.as_array().and_then(|args| args.first()) {
        Some(Value::Number(_)) => Ok(()),
        Some(Value::String(name)) if RESERVED_EVENTS.contains(&name.as_str()) => {
            Err(ParseError::ReservedEventName(name.clone()))
        }
        Some(Value::String(_)) => Ok(()),
        _ => Err(ParseError::InvalidEventPayload),
    }
}

/// Checks that every placeholder in `data` names one of `attachments`
/// attachments.
///
/// A placeholder is an object whose `_placeholder` is `true`, as Node
/// recognises it; its `num` must be an integer in `0..attachments`. Its
/// other members are not looked into. The walk keeps its own stack, so no
/// payload can exhaust the thread's.
pub(super) fn check_placeholders(data: &Value, attachments: usize) -> Result<(), ParseError> {
    let mut pending = vec![data];
    while let Some(value) = pending.pop() {
        match value {
            Value::Array(items) => pending.extend(items),
            Value::Object(map) if map.get("_placeholder") == Some(&Value::Bool(true)) => {
                let num = map
                    .get("num")
                    .and_then(Value::as_u64)
                    .ok_or(ParseError::InvalidPlaceholder)?;
                if usize::try_from(num).map_or(true, |num| num >= attachments) {
                    return Err(ParseError::PlaceholderOutOfRange { num, attachments });
                }
            }
            Value::Object(map) => pending.extend(map.values()),
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn connect_takes_an_object_or_nothing() {
        assert!(validate(PacketType::Connect, None).is_ok());
        assert!(validate(PacketType::Connect, Some(&json!({"token": "x"}))).is_ok());
        for data in [json!([]), json!("x"), json!(1), json!(null), json!(true)] {
            assert!(matches!(
                validate(PacketType::Connect, Some(&data)),
                Err(ParseError::ConnectPayloadNotObject)
            ));
        }
    }

    #[test]
    fn disconnect_takes_nothing() {
        assert!(validate(PacketType::Disconnect, None).is_ok());
        assert!(matches!(
            validate(PacketType::Disconnect, Some(&json!({}))),
            Err(ParseError::UnexpectedDisconnectPayload)
        ));
    }

    #[test]
    fn connect_error_takes_a_string_or_an_object() {
        assert!(validate(PacketType::ConnectError, Some(&json!("no"))).is_ok());
        assert!(validate(PacketType::ConnectError, Some(&json!({"message": "no"}))).is_ok());
        assert!(matches!(
            validate(PacketType::ConnectError, Some(&json!([]))),
            Err(ParseError::InvalidConnectErrorPayload)
        ));
        assert!(matches!(
            validate(PacketType::ConnectError, None),
            Err(ParseError::MissingPayload(PacketType::ConnectError))
        ));
    }

    #[test]
    fn event_name_is_a_string_or_a_number() {
        for kind in [PacketType::Event, PacketType::BinaryEvent] {
            assert!(validate(kind, Some(&json!(["hello", 1]))).is_ok());
            assert!(validate(kind, Some(&json!([42]))).is_ok());
            for data in [
                json!([]),
                json!([null]),
                json!([["a"]]),
                json!({"a": 1}),
                json!("a"),
            ] {
                assert!(matches!(
                    validate(kind, Some(&data)),
                    Err(ParseError::InvalidEventPayload)
                ));
            }
            assert!(
                matches!(validate(kind, None), Err(ParseError::MissingPayload(k)) if k == kind)
            );
        }
    }

    #[test]
    fn every_reserved_event_name_is_refused() {
        for name in RESERVED_EVENTS {
            assert!(matches!(
                validate(PacketType::Event, Some(&json!([name]))),
                Err(ParseError::ReservedEventName(refused)) if refused == name
            ));
        }
        assert!(validate(PacketType::Event, Some(&json!(["Connect"]))).is_ok());
    }

    #[test]
    fn ack_takes_any_array() {
        for kind in [PacketType::Ack, PacketType::BinaryAck] {
            assert!(validate(kind, Some(&json!([]))).is_ok());
            assert!(validate(kind, Some(&json!([null, {"a": 1}]))).is_ok());
            assert!(matches!(
                validate(kind, Some(&json!({}))),
                Err(ParseError::AckPayloadNotArray)
            ));
            assert!(
                matches!(validate(kind, None), Err(ParseError::MissingPayload(k)) if k == kind)
            );
        }
    }

    #[test]
    fn placeholders_anywhere_must_be_in_range() {
        let data = json!(["a", {"deep": [{"_placeholder": true, "num": 1}]}]);
        assert!(check_placeholders(&data, 2).is_ok());
        assert!(matches!(
            check_placeholders(&data, 1),
            Err(ParseError::PlaceholderOutOfRange {
                num: 1,
                attachments: 1
            })
        ));
    }

    #[test]
    fn placeholder_without_integer_num_is_refused() {
        for num in [json!(null), json!(-1), json!(0.5), json!("0")] {
            let data = json!(["a", {"_placeholder": true, "num": num}]);
            assert!(matches!(
                check_placeholders(&data, 1),
                Err(ParseError::InvalidPlaceholder)
            ));
        }
        let data = json!(["a", {"_placeholder": true}]);
        assert!(matches!(
            check_placeholders(&data, 1),
            Err(ParseError::InvalidPlaceholder)
        ));
    }

    #[test]
    fn objects_not_marked_true_are_not_placeholders() {
        let data = json!([{"_placeholder": false, "num": 9}, {"_placeholder": "true"}, {"num": 7}]);
        assert!(check_placeholders(&data, 1).is_ok());
    }
}

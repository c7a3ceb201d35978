//! Splitting a text packet into its header fields and its JSON payload,
//! `<type>[<attachments>-][<nsp>,][<id>][<json>]`, without parsing the JSON.

use super::{PacketType, ParseError};

/// The fields of a text packet, borrowed from it.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Header<'a> {
    /// The packet type.
    pub(super) kind: PacketType,
    /// The announced attachment count; zero for non-binary types.
    pub(super) attachments: usize,
    /// The namespace, `/` when the packet names none.
    pub(super) nsp: &'a str,
    /// The ack id.
    pub(super) id: Option<u64>,
    /// The JSON text after the header, if any.
    pub(super) payload: Option<&'a str>,
}

/// Splits `text` into its header and payload, refusing a binary packet that
/// announces more than `max_attachments` attachments.
pub(super) fn split(text: &str, max_attachments: usize) -> Result<Header<'_>, ParseError> {
    let first = text.chars().next().ok_or(ParseError::Empty)?;
    let kind = PacketType::from_char(first).ok_or(ParseError::UnknownType(first))?;
    let rest = &text[first.len_utf8()..];

    let (attachments, rest) = split_attachments(kind, rest, max_attachments)?;
    let (nsp, rest) = split_namespace(rest)?;
    let (id, rest) = split_id(rest)?;
    let payload = (!rest.is_empty()).then_some(rest);
    Ok(Header {
        kind,
        attachments,
        nsp,
        id,
        payload,
    })
}

/// Reads `<count>-` for binary types. Node reads up to the first `-`; a
/// count that is not all digits, or is zero, is refused as it refuses it.
fn split_attachments(
    kind: PacketType,
    rest: &str,
    max: usize,
) -> Result<(usize, &str), ParseError> {
    let (digits, after) = split_digits(rest);
    let dashed = after.strip_prefix('-');
    if !kind.is_binary() {
        // `2` followed by `12-` can only be an attachment count in the wrong
        // place: no valid event, ack or connect payload starts with `-`.
        return match dashed {
            Some(_) if !digits.is_empty() => Err(ParseError::AttachmentsOnNonBinaryType(kind)),
            _ => Ok((0, rest)),
        };
    }
    if digits.is_empty() {
        return Err(ParseError::MissingAttachmentCount);
    }
    let after = dashed.ok_or(ParseError::UnterminatedAttachmentCount)?;
    // Digits only, so parsing can only fail by overflowing, which is over
    // any limit too.
    let count: usize = digits
        .parse()
        .map_err(|_| ParseError::TooManyAttachments { max })?;
    if count == 0 {
        return Err(ParseError::NoAttachments);
    }
    if count > max {
        return Err(ParseError::TooManyAttachments { max });
    }
    Ok((count, after))
}

/// Reads `<nsp>,` when the text continues with `/`.
///
/// Like Node, the namespace runs to the first `,`, or to the end of the
/// packet when there is none (`0/admin` is a CONNECT to `/admin`). Without a
/// comma, text that looks like a payload (`[`, `{` or `"`) means the comma
/// was forgotten, which Node would silently fold into the namespace.
fn split_namespace(rest: &str) -> Result<(&str, &str), ParseError> {
    if !rest.starts_with('/') {
        return Ok(("/", rest));
    }
    match rest.split_once(',') {
        Some((nsp, after)) => Ok((nsp, after)),
        None if rest.contains(['[', '{', '"']) => Err(ParseError::UnterminatedNamespace),
        None => Ok((rest, "")),
    }
}

/// Reads the ack id: the digits before the payload.
fn split_id(rest: &str) -> Result<(Option<u64>, &str), ParseError> {
    let (digits, after) = split_digits(rest);
    if digits.is_empty() {
        return Ok((None, rest));
    }
    // Digits only, so parsing can only fail by overflowing.
    let id = digits.parse().map_err(|_| ParseError::AckIdOverflow)?;
    Ok((Some(id), after))
}

/// Splits the leading ASCII digits off `text`.
fn split_digits(text: &str) -> (&str, &str) {
    let len = text.bytes().take_while(u8::is_ascii_digit).count();
    // ASCII digits are one byte each, so `len` is a char boundary.
    text.split_at(len)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(text: &str) -> Header<'_> {
        match split(text, 64) {
            Ok(header) => header,
            Err(err) => panic!("{text:?} refused: {err}"),
        }
    }

    #[test]
    fn plain_type_has_main_namespace_and_nothing_else() {
        assert_eq!(
            header("1"),
            Header {
                kind: PacketType::Disconnect,
                attachments: 0,
                nsp: "/",
                id: None,
                payload: None,
            }
        );
    }

    #[test]
    fn every_field_is_split_in_order() {
        assert_eq!(
            header("61-/admin,15[{\"_placeholder\":true,\"num\":0}]"),
            Header {
                kind: PacketType::BinaryAck,
                attachments: 1,
                nsp: "/admin",
                id: Some(15),
                payload: Some("[{\"_placeholder\":true,\"num\":0}]"),
            }
        );
    }

    #[test]
    fn id_directly_after_type_without_namespace() {
        let header = header("312[\"bar\"]");
        assert_eq!((header.nsp, header.id), ("/", Some(12)));
        assert_eq!(header.payload, Some("[\"bar\"]"));
    }

    #[test]
    fn namespace_without_comma_runs_to_the_end() {
        let header = header("0/admin");
        assert_eq!((header.nsp, header.payload), ("/admin", None));
    }

    #[test]
    fn namespace_with_comma_and_nothing_after() {
        let header = header("1/admin,");
        assert_eq!(
            (header.nsp, header.id, header.payload),
            ("/admin", None, None)
        );
    }

    #[test]
    fn namespace_may_hold_any_character_but_comma() {
        assert_eq!(header("2/é-1,[\"a\"]").nsp, "/é-1");
    }

    #[test]
    fn largest_ack_id_is_accepted() {
        assert_eq!(header("318446744073709551615[]").id, Some(u64::MAX));
    }

    #[test]
    fn attachment_count_may_have_leading_zeros_like_node() {
        assert_eq!(header("502-[\"a\"]").attachments, 2);
    }
}

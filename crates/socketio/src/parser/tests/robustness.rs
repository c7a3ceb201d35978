//! Inputs that must be decoded without panicking: every truncation of valid
//! packets and random mutations of them. Whatever is accepted must encode
//! back to an equal packet.

use bytes::Bytes;

use super::{decode_all, spec_examples};
use crate::parser::{Decoder, encode};

/// Decodes `text` (and, if the header asks for them, `attachments`) and
/// checks that whatever is accepted encodes back to an equal packet.
fn decode_without_panic(text: &str, attachments: &[Bytes]) {
    let mut decoder = Decoder::default();
    let mut result = decoder.decode_text(text);
    for attachment in attachments {
        if !matches!(result, Ok(None)) {
            break;
        }
        result = decoder.decode_binary(attachment.clone());
    }
    if let Ok(Some(packet)) = result {
        let encoded = encode(&packet);
        let again = decode_all(encoded.text.as_str(), &encoded.attachments);
        assert_eq!(again.ok().flatten(), Some(packet), "{text:?} re-encoded");
    }
}

/// Every prefix and suffix of `text`, and `text` without each character.
fn truncations(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (at, c) in text.char_indices() {
        out.push(text[..at].to_owned());
        out.push(text[at..].to_owned());
        out.push(format!("{}{}", &text[..at], &text[at + c.len_utf8()..]));
    }
    out
}

#[test]
fn every_truncation_of_valid_packets_is_decoded_without_panic() {
    let mut examples = spec_examples();
    examples.push((r#"2/é,9["ünïcode",{"k":[1,2.5,null,true,"\"\\"]}]"#, vec![]));
    for (text, attachments) in examples {
        for truncated in truncations(text) {
            decode_without_panic(&truncated, &attachments);
            decode_without_panic(&truncated, &[]);
            decode_without_panic(
                &truncated,
                &attachments[..attachments.len().saturating_sub(1)],
            );
        }
    }
}

/// A small deterministic generator, so failures reproduce.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn random_mutations_of_valid_packets_are_decoded_without_panic() {
    const ALPHABET: &[char] = &[
        '0',
        '1',
        '2',
        '5',
        '6',
        '9',
        '-',
        '/',
        ',',
        '[',
        ']',
        '{',
        '}',
        '"',
        '\\',
        ':',
        '.',
        'e',
        ' ',
        'a',
        'é',
        '\u{1F600}',
        '\0',
    ];
    let examples = spec_examples();
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    for _ in 0..20_000 {
        let (text, attachments) = &examples[rng.below(examples.len())];
        let mut chars: Vec<char> = text.chars().collect();
        for _ in 0..=rng.below(3) {
            let c = ALPHABET[rng.below(ALPHABET.len())];
            let at = rng.below(chars.len() + 1);
            match rng.below(3) {
                0 => chars.insert(at, c),
                1 if at < chars.len() => chars[at] = c,
                _ if at < chars.len() => {
                    chars.remove(at);
                }
                _ => chars.push(c),
            }
        }
        let mutated: String = chars.into_iter().collect();
        decode_without_panic(&mutated, attachments);
    }
}

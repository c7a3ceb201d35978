//! The nesting limit, checked on the JSON text before it is parsed.
//!
//! serde_json refuses values nested deeper than 128, but a value nested that
//! deep is still built recursively, dropped recursively and walked
//! recursively by everything downstream. Counting brackets first keeps every
//! value the decoder hands out within `max_nesting`, whatever serde_json's
//! own limit is, and costs one pass over bytes already in cache.

use super::ParseError;

/// Refuses `json` if its arrays and objects nest more than `max` deep.
///
/// Brackets inside strings do not count. The text need not be valid JSON:
/// invalid text that passes is refused by the parser afterwards.
pub(super) fn check(json: &str, max: usize) -> Result<(), ParseError> {
    let bytes = json.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    loop {
        i = next_candidate(bytes, i, |word| {
            has_byte(word, b'"') | has_byte(word | CASE_BIT, b'{') | has_byte(word | CASE_BIT, b'}')
        });
        let Some(&byte) = bytes.get(i) else {
            return Ok(());
        };
        i += 1;
        match byte {
            b'"' => i = string_end(bytes, i),
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return Err(ParseError::TooDeep { max });
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
}

/// The index just after the `"` closing the string whose contents start at
/// `start`, or the end of `bytes` if it is not closed.
fn string_end(bytes: &[u8], start: usize) -> usize {
    let mut i = start;
    loop {
        i = next_candidate(bytes, i, |word| {
            has_byte(word, b'"') | has_byte(word, b'\\')
        });
        match bytes.get(i) {
            None => return bytes.len(),
            Some(b'"') => return i + 1,
            // Skip the escaped byte: `\"` does not close the string. Only
            // invalid JSON can put a multi-byte character there; landing
            // inside it is harmless since nothing here slices the text.
            Some(b'\\') => i += 2,
            Some(_) => i += 1,
        }
    }
}

/// Setting this bit in every byte maps `[` to `{` and `]` to `}`, and no
/// other byte to either.
const CASE_BIT: u64 = 0x2020_2020_2020_2020;

/// The index of the first byte from `i` that `interesting` flags, looking
/// at 8-byte words; past the last whole word, `i` of the tail, which the
/// caller scans byte by byte.
///
/// Strings and runs of numbers make up most of a payload; looking at them a
/// word at a time keeps this pass several times cheaper than the parse.
fn next_candidate(bytes: &[u8], mut i: usize, interesting: impl Fn(u64) -> u64) -> usize {
    while let Some(word) = bytes
        .get(i..i.saturating_add(8))
        .and_then(|chunk| <[u8; 8]>::try_from(chunk).ok())
    {
        let found = interesting(u64::from_le_bytes(word));
        if found != 0 {
            // The lowest flagged byte is always a real match (see `has_byte`).
            return i + (found.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    i
}

/// Flags (with its high bit) each byte of `word` equal to `byte`: the
/// classic "has zero byte" test on `word ^ byte`. A borrow can also flag a
/// byte above a real match, never below one, so the lowest flag is exact.
fn has_byte(word: u64, byte: u8) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let x = word ^ (ONES * u64::from(byte));
    x.wrapping_sub(ONES) & !x & HIGHS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn depth_ok(json: &str, max: usize) -> bool {
        check(json, max).is_ok()
    }

    #[test]
    fn depth_equal_to_the_limit_passes() {
        assert!(depth_ok("[[[1]]]", 3));
        assert!(depth_ok("{\"a\":[{}]}", 3));
    }

    #[test]
    fn depth_over_the_limit_is_refused() {
        assert!(!depth_ok("[[[[1]]]]", 3));
        assert!(!depth_ok("{\"a\":[{\"b\":[]}]}", 3));
    }

    #[test]
    fn siblings_do_not_add_up() {
        assert!(depth_ok("[[1],[2],{\"a\":[3]},[[4]]]", 3));
    }

    #[test]
    fn brackets_inside_strings_do_not_count() {
        assert!(depth_ok("[\"[[[[{{{{\"]", 1));
        assert!(depth_ok("[\"\\\"[[[[\"]", 1));
        assert!(depth_ok("[\"\\\\\",\"x\"]", 1));
        assert!(!depth_ok("[\"\\\\\",[[\"x\"]]]", 2));
    }

    #[test]
    fn unterminated_string_or_dangling_escape_ends_the_scan() {
        assert!(depth_ok("[\"[[[[", 1));
        assert!(depth_ok("[\"\\", 1));
    }

    #[test]
    fn brackets_after_long_runs_are_found_at_every_alignment() {
        for pad in 0..24 {
            let filler = "x".repeat(pad);
            let numbers = "1,".repeat(pad);
            assert!(
                !depth_ok(&format!("[\"{filler}\",[{numbers}[]]]"), 2),
                "{pad}"
            );
            assert!(
                !depth_ok(&format!("[{numbers}{{\"{filler}\\\"\":[[]]}}]"), 3),
                "{pad}"
            );
            assert!(
                depth_ok(&format!("[\"{filler}[[[{filler}\\\"[[\",[]]"), 2),
                "{pad}"
            );
        }
    }

    #[test]
    fn other_bytes_are_not_mistaken_for_brackets() {
        let all: String = (0u8..=127)
            .map(char::from)
            .filter(|c| !matches!(c, '"' | '[' | ']' | '{' | '}'))
            .chain("é€😀".chars())
            .collect();
        assert!(depth_ok(&all, 0));
    }

    #[test]
    fn lowest_flagged_byte_is_the_first_match() {
        // `#` right above `"` is the borrow case that flags a false match.
        let bytes = [b'a', b'"', b'#', b'"', b'#', b'\\', b'[', b']'];
        for start in 0..bytes.len() {
            let mut word = [b'x'; 8];
            word[..bytes.len() - start].copy_from_slice(&bytes[start..]);
            let found = has_byte(u64::from_le_bytes(word), b'"');
            let first = word.iter().position(|&b| b == b'"');
            let flagged = (found != 0).then(|| (found.trailing_zeros() / 8) as usize);
            assert_eq!(flagged, first, "{word:?}");
        }
    }

    #[test]
    fn ten_thousand_open_brackets_are_refused() {
        assert!(!depth_ok(&"[".repeat(10_000), 64));
    }
}

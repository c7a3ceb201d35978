//! Random ids as Node's `uid2(6)`: base62 characters.

const ALPHABET: &[u8; 62] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// `len` random base62 characters (server uids and request ids).
pub(crate) fn uid(len: usize) -> String {
    let mut bytes = vec![0u8; len];
    if getrandom::fill(&mut bytes).is_err() {
        // No OS randomness: fall back to the clock and a counter, still
        // unique enough for request ids within one process.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        for (i, byte) in bytes.iter_mut().enumerate() {
            *byte = (nanos >> (i * 8 % 128)) as u8;
        }
    }
    bytes
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect()
}

/// 16 random hex characters, as Node's `randomBytes(8).toString("hex")`
/// (the uids and request ids of socket.io-adapter's `ClusterAdapter`).
pub(crate) fn hex_id() -> String {
    uid(16)
        .bytes()
        .map(|b| char::from(b"0123456789abcdef"[b as usize % 16]))
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn uids_are_six_base62_characters_and_differ() {
        let a = super::uid(6);
        let b = super::uid(6);
        assert_eq!(a.len(), 6);
        assert!(a.bytes().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, b);
    }

    #[test]
    fn hex_ids_are_sixteen_hex_characters() {
        let id = super::hex_id();
        assert_eq!(id.len(), 16);
        assert!(
            id.bytes()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
    }
}

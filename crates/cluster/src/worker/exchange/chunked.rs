//! Chunked transfer coding, decoded piece by piece as the bytes come.

use bytes::{Bytes, BytesMut};

use super::ExchangeError;
use super::answer::MAX_ANSWER_HEAD;

/// Where a chunked body's decoding stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Chunked {
    /// Before a chunk's size line.
    Size,
    /// Inside a chunk: this many bytes left.
    Data(u64),
    /// After a chunk's data: its CRLF.
    DataEnd,
    /// After the last chunk: trailers until an empty line.
    Trailers,
    /// The body is over.
    Done,
}

/// The next piece of a chunked body from `buf`: data, or none when more
/// bytes are needed or the body is over (`state` says which).
pub(crate) fn decode_chunked(
    state: &mut Chunked,
    buf: &mut BytesMut,
) -> Result<Option<Bytes>, ExchangeError> {
    loop {
        match *state {
            Chunked::Size => match httparse::parse_chunk_size(buf) {
                Ok(httparse::Status::Complete((used, 0))) => {
                    let _ = buf.split_to(used);
                    *state = Chunked::Trailers;
                }
                Ok(httparse::Status::Complete((used, size))) => {
                    let _ = buf.split_to(used);
                    *state = Chunked::Data(size);
                }
                Ok(httparse::Status::Partial) if buf.len() < 1024 => return Ok(None),
                Ok(httparse::Status::Partial) | Err(_) => {
                    return Err(ExchangeError::Malformed("bad chunk size"));
                }
            },
            Chunked::Data(left) => {
                if buf.is_empty() {
                    return Ok(None);
                }
                let take = usize::try_from(left).unwrap_or(usize::MAX).min(buf.len());
                let data = buf.split_to(take).freeze();
                let left = left - take as u64;
                *state = if left == 0 {
                    Chunked::DataEnd
                } else {
                    Chunked::Data(left)
                };
                return Ok(Some(data));
            }
            Chunked::DataEnd => {
                if buf.len() < 2 {
                    return Ok(None);
                }
                if &buf[..2] != b"\r\n" {
                    return Err(ExchangeError::Malformed("chunk not followed by CRLF"));
                }
                let _ = buf.split_to(2);
                *state = Chunked::Size;
            }
            Chunked::Trailers => {
                if buf.starts_with(b"\r\n") {
                    let _ = buf.split_to(2);
                    *state = Chunked::Done;
                    continue;
                }
                match buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    Some(end) => {
                        let _ = buf.split_to(end + 4);
                        *state = Chunked::Done;
                    }
                    None if buf.len() < MAX_ANSWER_HEAD => return Ok(None),
                    None => return Err(ExchangeError::Malformed("trailers too large")),
                }
            }
            Chunked::Done => return Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// Feeds `encoded` to the chunked decoder in pieces cut at `cuts`.
    fn decode_in_pieces(
        encoded: &[u8],
        cuts: &[usize],
    ) -> Result<(Vec<u8>, Chunked), ExchangeError> {
        let mut state = Chunked::Size;
        let mut input = BytesMut::new();
        let mut out = Vec::new();
        let mut at = 0;
        let mut ends: Vec<usize> = cuts.iter().map(|c| c % (encoded.len() + 1)).collect();
        ends.push(encoded.len());
        ends.sort_unstable();
        for end in ends {
            input.extend_from_slice(&encoded[at..end.max(at)]);
            at = end.max(at);
            while let Some(data) = decode_chunked(&mut state, &mut input)? {
                out.extend_from_slice(&data);
            }
        }
        Ok((out, state))
    }

    fn chunked(pieces: &[Vec<u8>]) -> Vec<u8> {
        let mut encoded = Vec::new();
        for piece in pieces.iter().filter(|p| !p.is_empty()) {
            encoded.extend_from_slice(format!("{:X};ext=1\r\n", piece.len()).as_bytes());
            encoded.extend_from_slice(piece);
            encoded.extend_from_slice(b"\r\n");
        }
        encoded.extend_from_slice(b"0\r\nx-trailer: 1\r\n\r\n");
        encoded
    }

    proptest! {
        #[test]
        fn chunked_bodies_decode_however_they_are_cut(
            pieces in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..6),
            cuts in proptest::collection::vec(any::<usize>(), 0..8),
        ) {
            let encoded = chunked(&pieces);
            let (out, state) = decode_in_pieces(&encoded, &cuts).unwrap();
            prop_assert_eq!(state, Chunked::Done);
            prop_assert_eq!(out, pieces.concat());
        }

        #[test]
        fn the_chunked_decoder_never_panics(input in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode_in_pieces(&input, &[3, 17, 40]);
        }
    }

    #[test]
    fn bad_chunks_are_errors() {
        for raw in [&b"zz\r\n"[..], b"3\r\nabcX\r\n", &[b'f'; 2000][..]] {
            assert!(
                matches!(decode_in_pieces(raw, &[]), Err(ExchangeError::Malformed(_))),
                "{}",
                String::from_utf8_lossy(raw)
            );
        }
    }
}

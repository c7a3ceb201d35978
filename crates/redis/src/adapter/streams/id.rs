//! Stream entry ids (`<milliseconds>-<sequence>`): the offsets of
//! connection state recovery with the streams adapter, as Node's.

use std::fmt;

/// A Redis stream entry id. Ordered as Redis orders them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct StreamId {
    ms: u64,
    seq: u64,
}

impl StreamId {
    /// Reads `<ms>-<seq>`, digits only (Node's `/^[0-9]+-[0-9]+$/`, which
    /// `restoreSession` checks an offset against).
    pub(crate) fn parse(text: &str) -> Option<StreamId> {
        let (ms, seq) = text.split_once('-')?;
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(ms) || !digits(seq) {
            return None;
        }
        Some(StreamId {
            ms: ms.parse().ok()?,
            seq: seq.parse().ok()?,
        })
    }

    /// The smallest id after this one: the start of an `XRANGE` that
    /// excludes it (exclusive ranges need Redis 6.2; Node's `nextOffset`
    /// does the same).
    pub(crate) fn next(self) -> StreamId {
        match self.seq.checked_add(1) {
            Some(seq) => StreamId { ms: self.ms, seq },
            None => StreamId {
                ms: self.ms.saturating_add(1),
                seq: 0,
            },
        }
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

#[cfg(test)]
mod tests {
    use super::StreamId;

    #[test]
    fn ids_read_back_and_order_as_redis_orders_them() {
        let a = StreamId::parse("1700000000000-9").unwrap();
        let b = StreamId::parse("1700000000000-10").unwrap();
        let c = StreamId::parse("1700000000001-0").unwrap();
        assert!(a < b && b < c, "numeric, not textual, order");
        assert_eq!(a.to_string(), "1700000000000-9");
        assert_eq!(a.next(), b);
        assert_eq!(
            StreamId::parse(&format!("5-{}", u64::MAX))
                .unwrap()
                .next()
                .to_string(),
            "6-0"
        );
    }

    #[test]
    fn offsets_that_are_not_stream_ids_are_refused() {
        for bad in [
            "",
            "1",
            "1-",
            "-1",
            "1-2-3",
            "a-1",
            "1-b",
            " 1-2",
            "1-2 ",
            "+",
            "$",
            "99999999999999999999-1",
        ] {
            assert_eq!(StreamId::parse(bad), None, "{bad:?}");
        }
    }
}

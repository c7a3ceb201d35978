//! The query parameters Engine.IO routes by: one parser for the engine,
//! the cluster's master (which reads only `sid`) and the worker proxy.

/// `EIO`, `transport` and `sid` of a request's query, borrowed from it.
///
/// Values are used as they are: none of them needs percent-decoding (a
/// session id is base64url, the others are short ASCII words). The first
/// occurrence of a repeated parameter wins.
///
/// ```
/// use iocluster_engineio::EngineQuery;
/// let query = EngineQuery::parse("EIO=4&transport=polling&t=Nx&sid=abc");
/// assert_eq!(query.eio, Some("4"));
/// assert_eq!(query.transport, Some("polling"));
/// assert_eq!(query.sid, Some("abc"));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EngineQuery<'a> {
    /// The protocol version (`EIO=4`).
    pub eio: Option<&'a str>,
    /// The transport (`polling` or `websocket`).
    pub transport: Option<&'a str>,
    /// The session id, on every request after the handshake.
    pub sid: Option<&'a str>,
}

impl<'a> EngineQuery<'a> {
    /// Reads a raw query (the part after `?`, without it).
    pub fn parse(query: &'a str) -> Self {
        let mut parsed = EngineQuery::default();
        for pair in query.split('&') {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let slot = match key {
                "EIO" => &mut parsed.eio,
                "transport" => &mut parsed.transport,
                "sid" => &mut parsed.sid,
                _ => continue,
            };
            slot.get_or_insert(value);
        }
        parsed
    }

    /// Reads the query of a request target (`/path?query`); a target
    /// without `?` has none of the parameters.
    pub fn of_target(target: &'a str) -> Self {
        target
            .split_once('?')
            .map_or_else(EngineQuery::default, |(_, query)| EngineQuery::parse(query))
    }
}

#[cfg(test)]
mod tests {
    use super::EngineQuery;

    #[test]
    fn reads_the_first_of_each_parameter() {
        let q = EngineQuery::parse("EIO=4&transport=polling&t=x&sid=abc&sid=def");
        assert_eq!(q.eio, Some("4"));
        assert_eq!(q.transport, Some("polling"));
        assert_eq!(q.sid, Some("abc"));
        assert_eq!(EngineQuery::parse(""), EngineQuery::default());
    }

    #[test]
    fn a_key_without_value_is_empty_and_lookalike_keys_are_not_taken() {
        let q = EngineQuery::parse("sid&xsid=1&SID=2&transport=");
        assert_eq!(q.sid, Some(""));
        assert_eq!(q.transport, Some(""));
        let q = EngineQuery::of_target("/socket.io/?EIO=4&sid=s1");
        assert_eq!(q.sid, Some("s1"));
        assert_eq!(
            EngineQuery::of_target("/socket.io/"),
            EngineQuery::default()
        );
    }
}

//! The server under test ([`Target`]) and the options every scenario
//! shares ([`RunOptions`]).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use crate::error::LoadgenError;

/// The Engine.IO path when the URL names none.
pub const DEFAULT_PATH: &str = "/socket.io/";

/// How long the setup of a scenario (connecting every client) may take by
/// default (`--setup-limit`); clients not connected by then are counted as
/// timeouts.
pub const SETUP_LIMIT: Duration = Duration::from_secs(60);

/// The longest run allowed: loads here are bounded in time.
pub const MAX_DURATION: Duration = Duration::from_secs(600);

/// The most clients (or concurrent sessions) one run may use.
pub const MAX_CLIENTS: usize = 50_000;

/// The most loopback source addresses (127.0.0.1 ..= 127.0.0.254).
pub const MAX_SOURCES: usize = 254;

/// An Engine.IO server on loopback: `http://127.0.0.1:PORT[/path/]`.
///
/// Only loopback addresses are accepted: this tool sends load, and load is
/// only ever sent to this machine.
///
/// ```
/// use iocluster_loadgen::Target;
/// let target = Target::parse("http://127.0.0.1:3000").unwrap();
/// assert_eq!(target.addr().port(), 3000);
/// assert_eq!(target.path(), "/socket.io/");
/// assert!(Target::parse("http://10.0.0.1:3000").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    addr: SocketAddr,
    path: String,
    tls: bool,
}

impl Target {
    /// Parses `http://HOST:PORT[/path/]` with HOST a 127.0.0.0/8 address or
    /// `localhost`; the path defaults to [`DEFAULT_PATH`].
    pub fn parse(url: &str) -> Result<Target, LoadgenError> {
        let bad = |reason| LoadgenError::BadUrl {
            url: url.to_owned(),
            reason,
        };
        let (tls, rest) = match (url.strip_prefix("http://"), url.strip_prefix("https://")) {
            (Some(rest), _) => (false, rest),
            (None, Some(rest)) => (true, rest),
            (None, None) => return Err(bad("it must start with http:// or https://")),
        };
        let (authority, path) = match rest.find('/') {
            Some(at) => rest.split_at(at),
            None => (rest, ""),
        };
        let (host, port) = authority
            .rsplit_once(':')
            .ok_or_else(|| bad("it must name a port, as in http://127.0.0.1:3000"))?;
        let port: u16 = port.parse().map_err(|_| bad("the port is not a number"))?;
        let ip = if host.eq_ignore_ascii_case("localhost") {
            Ipv4Addr::LOCALHOST
        } else {
            host.parse::<Ipv4Addr>()
                .map_err(|_| bad("the host must be an IPv4 loopback address or localhost"))?
        };
        if !ip.is_loopback() {
            return Err(bad("load is only sent to loopback (127.0.0.0/8)"));
        }
        let path = match path {
            "" | "/" => DEFAULT_PATH.to_owned(),
            p if p.ends_with('/') => p.to_owned(),
            p => format!("{p}/"),
        };
        Ok(Target {
            addr: SocketAddr::new(IpAddr::V4(ip), port),
            path,
            tls,
        })
    }

    /// The server's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Whether the server speaks HTTPS (`https://`).
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// The Engine.IO path, ending in `/`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The request target of a polling request: the handshake without
    /// `sid`, the session's requests with it.
    pub fn polling_target(&self, sid: Option<&str>) -> String {
        match sid {
            Some(sid) => format!("{}?EIO=4&transport=polling&sid={sid}", self.path),
            None => format!("{}?EIO=4&transport=polling", self.path),
        }
    }

    /// The URL of a WebSocket connection: a new session without `sid`, the
    /// upgrade of a polling session with it.
    pub fn websocket_url(&self, sid: Option<&str>) -> String {
        let scheme = if self.tls { "wss" } else { "ws" };
        let base = format!(
            "{scheme}://{}{}?EIO=4&transport=websocket",
            self.addr, self.path
        );
        match sid {
            Some(sid) => format!("{base}&sid={sid}"),
            None => base,
        }
    }
}

/// What every scenario shares: where, from how many source addresses, how
/// long, and how long one step may take.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The server.
    pub target: Target,
    /// Client sockets are bound to 127.0.0.1 ..= 127.0.0.`sources`, in turn.
    pub sources: usize,
    /// How long the measured phase lasts.
    pub duration: Duration,
    /// The bound of every connect, request, read and write.
    pub timeout: Duration,
    /// How many clients connect at once while a scenario sets up.
    pub connect_concurrency: usize,
    /// The CA that an `https://` server's certificate is checked against.
    pub ca_file: Option<std::path::PathBuf>,
    /// How long a scenario may take to connect its clients (default
    /// [`SETUP_LIMIT`]).
    pub setup_limit: Duration,
}

impl RunOptions {
    /// Options with the defaults: 8 sources, 5 s per step, 64 connecting
    /// at once.
    pub fn new(target: Target, duration: Duration) -> RunOptions {
        RunOptions {
            target,
            sources: 8,
            duration,
            timeout: Duration::from_secs(5),
            connect_concurrency: 64,
            setup_limit: SETUP_LIMIT,
            ca_file: None,
        }
    }

    /// Checks the bounds: 1..=254 sources, a duration up to
    /// [`MAX_DURATION`], a non-zero timeout.
    pub fn validate(&self) -> Result<(), LoadgenError> {
        if self.sources == 0 || self.sources > MAX_SOURCES {
            return Err(LoadgenError::BadOption(format!(
                "--sources must be 1..={MAX_SOURCES}"
            )));
        }
        if self.duration.is_zero() || self.duration > MAX_DURATION {
            return Err(LoadgenError::BadOption(format!(
                "--duration must be more than 0 and at most {MAX_DURATION:?}"
            )));
        }
        if self.timeout.is_zero() || self.connect_concurrency == 0 || self.setup_limit.is_zero() {
            return Err(LoadgenError::BadOption(
                "--timeout, --setup-limit and --connect-concurrency must be more than 0".into(),
            ));
        }
        if self.setup_limit > MAX_DURATION {
            return Err(LoadgenError::BadOption(format!(
                "--setup-limit must be at most {MAX_DURATION:?}"
            )));
        }
        Ok(())
    }
}

/// Checks a client count against [`MAX_CLIENTS`].
pub fn validate_clients(name: &str, count: usize) -> Result<(), LoadgenError> {
    if count == 0 || count > MAX_CLIENTS {
        return Err(LoadgenError::BadOption(format!(
            "{name} must be 1..={MAX_CLIENTS}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_without_path_gets_the_socket_io_path() {
        let target = Target::parse("http://127.0.0.1:8080").unwrap();
        assert_eq!(target.addr(), "127.0.0.1:8080".parse().unwrap());
        assert_eq!(
            target.polling_target(Some("abc")),
            "/socket.io/?EIO=4&transport=polling&sid=abc"
        );
        assert_eq!(
            target.websocket_url(None),
            "ws://127.0.0.1:8080/socket.io/?EIO=4&transport=websocket"
        );
    }

    #[test]
    fn url_path_is_kept_with_a_trailing_slash() {
        let target = Target::parse("http://localhost:1/engine").unwrap();
        assert_eq!(target.path(), "/engine/");
        assert_eq!(target.addr().ip(), IpAddr::V4(Ipv4Addr::LOCALHOST));
    }

    #[test]
    fn non_loopback_and_malformed_urls_are_refused() {
        for url in [
            "http://192.168.1.1:80",
            "http://8.8.8.8:53",
            "http://127.0.0.1",
            "http://example.com:80",
            "http://127.0.0.1:99999",
        ] {
            assert!(Target::parse(url).is_err(), "{url} was accepted");
        }
        assert!(Target::parse("http://127.9.8.7:1").is_ok());
        assert!(Target::parse("https://127.0.0.1:443").is_ok_and(|t| t.is_tls()));
        assert!(Target::parse("https://10.0.0.1:443").is_err());
    }

    #[test]
    fn options_out_of_bounds_are_refused() {
        let target = Target::parse("http://127.0.0.1:1").unwrap();
        let mut options = RunOptions::new(target, Duration::from_secs(1));
        assert!(options.validate().is_ok());
        options.sources = 255;
        assert!(options.validate().is_err());
        options.sources = 1;
        options.duration = Duration::from_secs(3600);
        assert!(options.validate().is_err());
        assert!(validate_clients("--clients", 0).is_err());
        assert!(validate_clients("--clients", MAX_CLIENTS + 1).is_err());
    }
}

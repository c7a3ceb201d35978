//! Loopback ports for servers that must be told a port (redis-server, the
//! load balancers' configs). Servers that can bind port 0 and say where they
//! listen should do that instead: a free port can be taken by someone else
//! between this check and the server's bind.
//!
//! The ports handed out lie below the kernel's range for the local ports of
//! outgoing connections (`net.ipv4.ip_local_port_range`), so no client of
//! any test can take one between the check and the server's bind (a
//! `bind("127.0.0.1:0")` port could: CI saw a Redis cluster node fail with
//! "Address already in use" that way). Within a process a port is handed out
//! once; processes start at different places of the range.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

/// How many ports below the ephemeral range are handed out in turn.
const SPAN: u32 = 12_000;

/// The lowest port handed out: above the well-known and most registered
/// service ports.
const LOWEST: u32 = 10_000;

/// A port of 127.0.0.1 that nothing listens on now (bound, then released),
/// outside the range the kernel gives outgoing connections, and not handed
/// out before by this process. Never a fixed port such as 6379: tests run
/// side by side.
pub fn free_port() -> u16 {
    let (first, span) = *range();
    for _ in 0..span {
        let port = first + next() % span;
        let Ok(port) = u16::try_from(port) else {
            continue;
        };
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port in {first}..{}", first + span)
}

/// The next of this process's turns through the span.
fn next() -> u32 {
    static TURN: OnceLock<AtomicU32> = OnceLock::new();
    TURN.get_or_init(|| AtomicU32::new(start()))
        .fetch_add(1, Ordering::Relaxed)
}

/// Where this process starts in the span: from its PID and the clock, so
/// test binaries running side by side start far apart.
fn start() -> u32 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|since| since.subsec_nanos())
        .unwrap_or(0);
    std::process::id()
        .wrapping_mul(7_919)
        .wrapping_add(nanos / 1_000)
}

/// The first port handed out and how many: the `SPAN` ports below the
/// ephemeral range, or from `LOWEST` when that range starts too low.
fn range() -> &'static (u32, u32) {
    static RANGE: OnceLock<(u32, u32)> = OnceLock::new();
    RANGE.get_or_init(|| {
        let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
            .ok()
            .and_then(|text| text.split_whitespace().next()?.parse::<u32>().ok())
            .unwrap_or(32_768);
        let first = ephemeral_low.saturating_sub(SPAN).max(LOWEST);
        let span = ephemeral_low.saturating_sub(first).max(1_000);
        (first, span)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_lie_below_the_ephemeral_range_and_are_never_handed_out_twice() {
        let (first, span) = *range();
        let ports: Vec<u16> = (0..200).map(|_| free_port()).collect();
        let distinct: std::collections::HashSet<u16> = ports.iter().copied().collect();
        assert_eq!(distinct.len(), ports.len(), "a port handed out twice");
        for port in ports {
            let port = u32::from(port);
            assert!(
                (first..first + span).contains(&port),
                "{port} outside {first}..{}",
                first + span
            );
        }
    }
}

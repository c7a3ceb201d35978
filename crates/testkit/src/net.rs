//! Loopback ports for servers that must be told a port (redis-server, the
//! load balancers' configs). Servers that can bind port 0 and say where they
//! listen should do that instead: a free port can be taken by someone else
//! between this check and the server's bind.

/// A port of 127.0.0.1 that nothing listens on now (bound, then released).
/// Never a fixed port such as 6379: tests run side by side.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free loopback port")
        .port()
}

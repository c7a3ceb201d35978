//! What only the root's end-to-end tests need, on top of
//! `iocluster-testkit` (which has the processes, clients and waits): the
//! `iocluster` binary cargo built for them, and the load-balancer
//! scenarios.
#![allow(dead_code)] // each test crate uses its own subset of the helpers

/// The load-balancer tests' shared half (`tests/lb_*.rs`).
pub mod lb;

use std::path::Path;

/// The `iocluster` binary cargo built for these tests.
pub fn iocluster_bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_iocluster"))
}

//! The master's request head reader (`crates/cluster/src/head.rs`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| iocluster_cluster::fuzz::head(data));

//! The cluster adapter's envelopes, read whole and header only.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| iocluster_cluster::fuzz::cluster_envelope(data));

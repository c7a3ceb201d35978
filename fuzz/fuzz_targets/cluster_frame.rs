//! Control channel frames, in both directions, and their JSON messages.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| iocluster_cluster::fuzz::cluster_frame(data));

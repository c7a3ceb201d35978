//! Engine.IO text packets, as WebSocket frames and as polling records.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| iocluster_engineio::fuzz::engineio_packet(data));

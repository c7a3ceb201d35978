//! Engine.IO polling request bodies (`b` + base64 records included).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| iocluster_engineio::fuzz::engineio_payload(data));

//! The notepack-compatible msgpack reader.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| iocluster_redis::fuzz::redis_msgpack(data));

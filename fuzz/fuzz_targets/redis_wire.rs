//! Messages of the Redis adapters: broadcasts, requests and responses, sharded messages.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| iocluster_redis::fuzz::redis_wire(data));

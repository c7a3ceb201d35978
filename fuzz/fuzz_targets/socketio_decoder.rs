//! The Socket.IO decoder of one connection: text packets and attachments.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| iocluster_socketio::fuzz::socketio_decoder(data));

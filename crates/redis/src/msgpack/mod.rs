//! MessagePack exactly as notepack.io 3.x writes and reads it: the format
//! Node's @socket.io/redis-adapter and @socket.io/redis-emitter put on Redis.
//!
//! Values are JSON values whose binary parts are Socket.IO placeholders
//! (`{"_placeholder":true,"num":N}`) with the bytes in a list of
//! attachments, as [`Payload`](iocluster_socketio::Payload) holds them: a
//! placeholder is written as a msgpack `bin` (a Node `Buffer`), and each
//! `bin` read becomes the next placeholder.
//!
//! What notepack.io writes, and so what [`encode`] writes:
//! - integers (and integral floats, `-0` included) in the smallest of
//!   positive fixint, `uint 8/16/32/64` for non-negative values, negative
//!   fixint, `int 8/16/32/64` for negative ones; any other number as
//!   `float 64` (never `float 32`);
//! - strings as fixstr, `str 8/16/32`; `bin 8/16/32`; arrays and maps as
//!   fix, 16 or 32; `nil`, `true`, `false`.
//!
//! What [`decode`] reads besides: `float 32`, `ext` type 0 (notepack's old
//! ArrayBuffer encoding: binary), fixext 1 type 0 (`undefined`: dropped from
//! maps, `null` in arrays, as `JSON.stringify` does), timestamps (a `Date`:
//! its ISO string, as `JSON.stringify` does), other extensions as
//! `[type, binary]` like notepack. Integral floats come back as integers
//! (JavaScript does not tell them apart). 64-bit integers are kept exactly
//! where JavaScript would round them.
//!
//! ```
//! use iocluster_redis::msgpack;
//! use serde_json::json;
//!
//! let bytes = msgpack::encode(&json!(["hello", {"_placeholder": true, "num": 0}]), &[vec![1u8, 2].into()]);
//! assert_eq!(bytes, [0x92, 0xa5, b'h', b'e', b'l', b'l', b'o', 0xc4, 0x02, 1, 2]);
//! let (value, attachments) = msgpack::decode(&bytes)?;
//! assert_eq!(value, json!(["hello", {"_placeholder": true, "num": 0}]));
//! assert_eq!(attachments[0].as_ref(), &[1, 2]);
//! # Ok::<(), iocluster_redis::msgpack::DecodeError>(())
//! ```

mod date;
mod decode;
mod encode;

pub use decode::{DecodeError, decode, decode_bytes};
pub use encode::{Writer, encode};

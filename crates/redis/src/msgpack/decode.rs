//! The reader: what notepack.io reads, as JSON values plus attachments.

use bytes::Bytes;
use iocluster_socketio::placeholder;
use rmp::Marker;
use serde_json::{Map, Number, Value};

use super::date;

/// The deepest nesting accepted: messages come from the network.
const MAX_DEPTH: usize = 128;

/// Why bytes are not a msgpack value notepack.io would read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The input ends inside a value.
    #[error("msgpack input ends inside a value")]
    Truncated,
    /// Bytes remain after the value.
    #[error("{0} trailing bytes after the msgpack value")]
    TrailingBytes(usize),
    /// A marker notepack.io does not read (`0xc1`).
    #[error("unknown msgpack marker 0x{0:02x}")]
    UnknownMarker(u8),
    /// A string is not UTF-8.
    #[error("msgpack string is not UTF-8")]
    InvalidUtf8,
    /// A map key is not a string or a number.
    #[error("msgpack map key is not a string or a number")]
    InvalidKey,
    /// Nested deeper than the limit.
    #[error("msgpack value nested deeper than {MAX_DEPTH}")]
    TooDeep,
}

/// Decodes one msgpack value; binary values become placeholders numbered
/// in reading order, their bytes (sharing `input`'s buffer) the returned
/// attachments.
pub fn decode(input: &[u8]) -> Result<(Value, Vec<Bytes>), DecodeError> {
    decode_bytes(&Bytes::copy_from_slice(input))
}

/// As [`decode`], without copying: attachments are slices of `input`.
pub fn decode_bytes(input: &Bytes) -> Result<(Value, Vec<Bytes>), DecodeError> {
    let mut reader = Reader {
        input,
        pos: 0,
        attachments: Vec::new(),
    };
    let value = reader.value(0)?.unwrap_or(Value::Null);
    if reader.pos != input.len() {
        return Err(DecodeError::TrailingBytes(input.len() - reader.pos));
    }
    Ok((value, reader.attachments))
}

struct Reader<'a> {
    input: &'a Bytes,
    pos: usize,
    attachments: Vec<Bytes>,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], DecodeError> {
        let end = self.pos.checked_add(n).ok_or(DecodeError::Truncated)?;
        let slice = self
            .input
            .get(self.pos..end)
            .ok_or(DecodeError::Truncated)?;
        self.pos = end;
        Ok(slice)
    }

    fn array_of<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array_of::<1>()?[0])
    }
    fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array_of()?))
    }
    fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array_of()?))
    }

    fn binary(&mut self, len: usize) -> Result<Value, DecodeError> {
        let start = self.pos;
        self.take(len)?;
        self.attachments.push(self.input.slice(start..start + len));
        Ok(placeholder(self.attachments.len() - 1))
    }

    fn string(&mut self, len: usize) -> Result<String, DecodeError> {
        let bytes = self.take(len)?;
        std::str::from_utf8(bytes)
            .map(str::to_owned)
            .map_err(|_| DecodeError::InvalidUtf8)
    }

    /// A value; `None` for `undefined`.
    fn value(&mut self, depth: usize) -> Result<Option<Value>, DecodeError> {
        if depth > MAX_DEPTH {
            return Err(DecodeError::TooDeep);
        }
        let marker = Marker::from_u8(self.u8()?);
        let value = match marker {
            Marker::FixPos(n) => Value::from(n),
            Marker::FixNeg(n) => Value::from(n),
            Marker::Null => Value::Null,
            Marker::True => Value::Bool(true),
            Marker::False => Value::Bool(false),
            Marker::U8 => Value::from(self.u8()?),
            Marker::U16 => Value::from(self.u16()?),
            Marker::U32 => Value::from(self.u32()?),
            Marker::U64 => Value::from(u64::from_be_bytes(self.array_of()?)),
            Marker::I8 => Value::from(self.u8()? as i8),
            Marker::I16 => Value::from(self.u16()? as i16),
            Marker::I32 => Value::from(self.u32()? as i32),
            Marker::I64 => Value::from(i64::from_be_bytes(self.array_of()?)),
            Marker::F32 => float(f32::from_be_bytes(self.array_of()?) as f64),
            Marker::F64 => float(f64::from_be_bytes(self.array_of()?)),
            Marker::FixStr(n) => Value::String(self.string(n as usize)?),
            Marker::Str8 => {
                let n = self.u8()? as usize;
                Value::String(self.string(n)?)
            }
            Marker::Str16 => {
                let n = self.u16()? as usize;
                Value::String(self.string(n)?)
            }
            Marker::Str32 => {
                let n = self.u32()? as usize;
                Value::String(self.string(n)?)
            }
            Marker::Bin8 => {
                let n = self.u8()? as usize;
                self.binary(n)?
            }
            Marker::Bin16 => {
                let n = self.u16()? as usize;
                self.binary(n)?
            }
            Marker::Bin32 => {
                let n = self.u32()? as usize;
                self.binary(n)?
            }
            Marker::FixArray(n) => self.array(n as usize, depth)?,
            Marker::Array16 => {
                let n = self.u16()? as usize;
                self.array(n, depth)?
            }
            Marker::Array32 => {
                let n = self.u32()? as usize;
                self.array(n, depth)?
            }
            Marker::FixMap(n) => self.map(n as usize, depth)?,
            Marker::Map16 => {
                let n = self.u16()? as usize;
                self.map(n, depth)?
            }
            Marker::Map32 => {
                let n = self.u32()? as usize;
                self.map(n, depth)?
            }
            Marker::FixExt1 => return self.ext(1),
            Marker::FixExt2 => return self.ext(2),
            Marker::FixExt4 => return self.ext(4),
            Marker::FixExt8 => return self.ext(8),
            Marker::FixExt16 => return self.ext(16),
            Marker::Ext8 => {
                let n = self.u8()? as usize;
                return self.ext(n);
            }
            Marker::Ext16 => {
                let n = self.u16()? as usize;
                return self.ext(n);
            }
            Marker::Ext32 => {
                let n = self.u32()? as usize;
                return self.ext(n);
            }
            Marker::Reserved => return Err(DecodeError::UnknownMarker(0xc1)),
        };
        Ok(Some(value))
    }

    fn array(&mut self, len: usize, depth: usize) -> Result<Value, DecodeError> {
        // Each item takes at least one byte: a lying length cannot make us
        // allocate more than the input.
        let mut items = Vec::with_capacity(len.min(self.input.len() - self.pos));
        for _ in 0..len {
            items.push(self.value(depth + 1)?.unwrap_or(Value::Null));
        }
        Ok(Value::Array(items))
    }

    fn map(&mut self, len: usize, depth: usize) -> Result<Value, DecodeError> {
        let mut map = Map::new();
        for _ in 0..len {
            let key = match self.value(depth + 1)? {
                Some(Value::String(key)) => key,
                // JavaScript turns any other key into a string.
                Some(Value::Number(n)) => n.to_string(),
                _ => return Err(DecodeError::InvalidKey),
            };
            if let Some(value) = self.value(depth + 1)? {
                map.insert(key, value);
            } else {
                map.remove(&key);
            }
        }
        Ok(Value::Object(map))
    }

    /// An extension of `len` data bytes; `None` for `undefined`.
    fn ext(&mut self, len: usize) -> Result<Option<Value>, DecodeError> {
        let kind = self.u8()? as i8;
        let value = match (kind, len) {
            (0, 1) => {
                self.take(1)?;
                return Ok(None);
            }
            (0, 8) => {
                let hi = i32::from_be_bytes(self.array_of()?) as i64;
                let lo = self.u32()? as i64;
                Value::String(date::iso_from_millis(hi * (1 << 32) + lo))
            }
            (0, _) => self.binary(len)?,
            (-1, 4) => Value::String(date::iso_from_millis(self.u32()? as i64 * 1000)),
            (-1, 8) => {
                let hi = self.u32()?;
                let lo = self.u32()?;
                let seconds = ((hi & 0x3) as i64) << 32 | lo as i64;
                let nanos = (hi >> 2) as i64;
                Value::String(date::iso_from_millis(seconds * 1000 + nanos / 1_000_000))
            }
            (-1, 12) => {
                let nanos = self.u32()? as i64;
                let seconds = i64::from_be_bytes(self.array_of()?);
                // Saturating: seconds near i64::MAX are still a date,
                // whatever it prints, never an overflow.
                Value::String(date::iso_from_millis(
                    seconds
                        .saturating_mul(1000)
                        .saturating_add(nanos / 1_000_000),
                ))
            }
            _ => Value::Array(vec![Value::from(kind), self.binary(len)?]),
        };
        Ok(Some(value))
    }
}

/// A JavaScript number read as a float: integral values within the safe
/// range become integers, as JavaScript prints them.
fn float(f: f64) -> Value {
    const SAFE: f64 = 9_007_199_254_740_991.0;
    if f.is_finite() && f.floor() == f && f.abs() <= SAFE {
        return Value::from(f as i64);
    }
    Number::from_f64(f).map_or(Value::Null, Value::Number)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamp_96_near_the_largest_second_does_not_overflow() {
        // Found by the `redis_msgpack` fuzz target: `ext 8` of 12 bytes,
        // type -1, whose milliseconds overflowed an i64 on the addition
        // of the nanoseconds (a panic with overflow checks).
        let crash = [
            0xc7, 0x0c, 0xff, 0x00, 0xff, 0xff, 0x65, 0x1d, 0xff, 0xcd, 0xff, 0xff, 0xff, 0xff,
            0x6b, 0x30, 0x38, 0xff,
        ];
        assert_eq!(decode(&crash), Err(DecodeError::TrailingBytes(3)));
        let mut largest = vec![0xc7, 0x0c, 0xff];
        largest.extend_from_slice(&999_999_999u32.to_be_bytes());
        largest.extend_from_slice(&i64::MAX.to_be_bytes());
        assert!(matches!(decode(&largest), Ok((Value::String(_), _))));
    }
}

//! The writer: notepack.io's choices of msgpack types.

use bytes::Bytes;
use iocluster_socketio::placeholder_num;
use serde_json::{Map, Number, Value};

/// Encodes `value`, writing placeholders as the `bin` of their attachment.
///
/// A placeholder whose attachment is missing is written as the JSON object
/// it is.
pub fn encode(value: &Value, attachments: &[Bytes]) -> Vec<u8> {
    let mut writer = Writer::default();
    writer.value(value, attachments);
    writer.into_bytes()
}

/// Writes msgpack items one by one, for messages whose outer shape (key
/// order, absent keys) must be exactly Node's.
///
/// Writing to memory cannot fail: the `Result`s of `rmp`'s writers are
/// dropped on purpose.
#[derive(Debug, Default)]
pub struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    /// The bytes written so far.
    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }

    /// Writes an array header of `len` items.
    pub fn array(&mut self, len: usize) -> &mut Self {
        let _ = rmp::encode::write_array_len(&mut self.buf, len_u32(len));
        self
    }

    /// Writes a map header of `len` entries.
    pub fn map(&mut self, len: usize) -> &mut Self {
        let _ = rmp::encode::write_map_len(&mut self.buf, len_u32(len));
        self
    }

    /// Writes a string.
    pub fn str(&mut self, s: &str) -> &mut Self {
        let _ = rmp::encode::write_str_len(&mut self.buf, len_u32(s.len()));
        self.buf.extend_from_slice(s.as_bytes());
        self
    }

    /// Writes binary data (a Node `Buffer`).
    pub fn bin(&mut self, data: &[u8]) -> &mut Self {
        let _ = rmp::encode::write_bin_len(&mut self.buf, len_u32(data.len()));
        self.buf.extend_from_slice(data);
        self
    }

    /// Writes a boolean.
    pub fn bool(&mut self, value: bool) -> &mut Self {
        let _ = rmp::encode::write_bool(&mut self.buf, value);
        self
    }

    /// Writes `nil`.
    pub fn nil(&mut self) -> &mut Self {
        let _ = rmp::encode::write_nil(&mut self.buf);
        self
    }

    /// Writes an unsigned integer in notepack's smallest form.
    pub fn uint(&mut self, n: u64) -> &mut Self {
        let buf = &mut self.buf;
        let _ = if n < 0x80 {
            rmp::encode::write_pfix(buf, n as u8).map_err(drop)
        } else if n < 0x100 {
            rmp::encode::write_u8(buf, n as u8).map_err(drop)
        } else if n < 0x1_0000 {
            rmp::encode::write_u16(buf, n as u16).map_err(drop)
        } else if n < 0x1_0000_0000 {
            rmp::encode::write_u32(buf, n as u32).map_err(drop)
        } else {
            rmp::encode::write_u64(buf, n).map_err(drop)
        };
        self
    }

    /// Writes a signed integer in notepack's smallest form.
    pub fn int(&mut self, n: i64) -> &mut Self {
        if n >= 0 {
            return self.uint(n as u64);
        }
        let buf = &mut self.buf;
        let _ = if n >= -0x20 {
            rmp::encode::write_nfix(buf, n as i8).map_err(drop)
        } else if n >= -0x80 {
            rmp::encode::write_i8(buf, n as i8).map_err(drop)
        } else if n >= -0x8000 {
            rmp::encode::write_i16(buf, n as i16).map_err(drop)
        } else if n >= -0x8000_0000 {
            rmp::encode::write_i32(buf, n as i32).map_err(drop)
        } else {
            rmp::encode::write_i64(buf, n).map_err(drop)
        };
        self
    }

    /// Writes a JSON number as notepack writes a JavaScript number.
    pub fn number(&mut self, n: &Number) -> &mut Self {
        if let Some(u) = n.as_u64() {
            return self.uint(u);
        }
        if let Some(i) = n.as_i64() {
            return self.int(i);
        }
        let f = n.as_f64().unwrap_or(f64::NAN);
        self.float(f)
    }

    /// Writes a float as notepack does: integral finite values as integers
    /// (`-0` as `0`), others as `float 64`.
    pub fn float(&mut self, f: f64) -> &mut Self {
        const TWO_63: f64 = 9_223_372_036_854_775_808.0;
        const TWO_64: f64 = 18_446_744_073_709_551_616.0;
        if !f.is_finite() || f.floor() != f {
            let _ = rmp::encode::write_f64(&mut self.buf, f);
            return self;
        }
        if f >= 0.0 {
            if f < TWO_64 {
                return self.uint(f as u64);
            }
        } else if f >= -TWO_63 {
            return self.int(f as i64);
        }
        // Beyond 64 bits notepack keeps the low 64 bits of the integer,
        // with the marker its sign chose.
        let low = f.rem_euclid(TWO_64) as u64;
        let _ = if f >= 0.0 {
            rmp::encode::write_u64(&mut self.buf, low).map_err(drop)
        } else {
            rmp::encode::write_i64(&mut self.buf, low as i64).map_err(drop)
        };
        self
    }

    /// Writes a JSON value, placeholders as the `bin` of their attachment.
    pub fn value(&mut self, value: &Value, attachments: &[Bytes]) -> &mut Self {
        match value {
            Value::Null => self.nil(),
            Value::Bool(b) => self.bool(*b),
            Value::Number(n) => self.number(n),
            Value::String(s) => self.str(s),
            Value::Array(items) => {
                self.array(items.len());
                for item in items {
                    self.value(item, attachments);
                }
                self
            }
            Value::Object(map) => {
                match placeholder_num(value).and_then(|num| attachments.get(num)) {
                    Some(data) => self.bin(data),
                    None => self.object(map, attachments),
                }
            }
        }
    }

    fn object(&mut self, map: &Map<String, Value>, attachments: &[Bytes]) -> &mut Self {
        self.map(map.len());
        for (key, value) in map {
            self.str(key);
            self.value(value, attachments);
        }
        self
    }
}

/// Lengths past `u32` cannot be written by notepack either (it throws);
/// they cannot occur in a Redis message (512 MB at most).
fn len_u32(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}

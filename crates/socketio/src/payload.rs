//! The arguments of an event or an ack: JSON values plus binary attachments.

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Arguments of an event or ack.
///
/// Binary values travel beside the JSON: a binary argument (or a binary value
/// nested anywhere in one) is a placeholder `{"_placeholder":true,"num":N}`
/// in `args` and its bytes are `attachments[N]`, exactly as on the wire, so
/// echoing a payload re-sends the same bytes without copying them.
///
/// ```
/// use iocluster_socketio::Payload;
/// use serde_json::json;
/// let payload = Payload::new(vec![json!("hello"), json!(1)]).with_binary(vec![1u8, 2, 3]);
/// assert_eq!(payload.arg::<String>(0).unwrap(), "hello");
/// assert_eq!(payload.binary(2).unwrap().as_ref(), &[1, 2, 3]);
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Payload {
    /// The JSON arguments (binary values as placeholders).
    pub args: Vec<Value>,
    /// The binary attachments, in placeholder order.
    pub attachments: Vec<Bytes>,
}

impl Payload {
    /// A payload of JSON arguments.
    pub fn new(args: Vec<Value>) -> Self {
        Payload {
            args,
            attachments: Vec::new(),
        }
    }

    /// An empty payload.
    pub fn empty() -> Self {
        Payload::default()
    }

    /// A payload of one argument serialized with serde.
    pub fn from_serialize<T: Serialize>(value: &T) -> Result<Self, serde_json::Error> {
        Ok(Payload::new(vec![serde_json::to_value(value)?]))
    }

    /// Appends a JSON argument.
    pub fn with_arg(mut self, value: impl Into<Value>) -> Self {
        self.args.push(value.into());
        self
    }

    /// Appends a binary argument.
    pub fn with_binary(mut self, data: impl Into<Bytes>) -> Self {
        let placeholder = placeholder(self.attachments.len());
        self.attachments.push(data.into());
        self.args.push(placeholder);
        self
    }

    /// Argument `index` deserialized as `T`.
    pub fn arg<T: DeserializeOwned>(&self, index: usize) -> Result<T, serde_json::Error> {
        let value = self.args.get(index).cloned().unwrap_or(Value::Null);
        serde_json::from_value(value)
    }

    /// The bytes of argument `index` when it is a binary placeholder.
    pub fn binary(&self, index: usize) -> Option<&Bytes> {
        self.args.get(index).and_then(|value| self.resolve(value))
    }

    /// The bytes a placeholder value stands for.
    pub fn resolve(&self, value: &Value) -> Option<&Bytes> {
        placeholder_num(value).and_then(|num| self.attachments.get(num))
    }

    /// The number of arguments.
    pub fn len(&self) -> usize {
        self.args.len()
    }

    /// Whether there is no argument.
    pub fn is_empty(&self) -> bool {
        self.args.is_empty()
    }
}

impl From<Vec<Value>> for Payload {
    fn from(args: Vec<Value>) -> Self {
        Payload::new(args)
    }
}

/// A single JSON value is one argument; use `Vec<Value>` for several.
impl From<Value> for Payload {
    fn from(value: Value) -> Self {
        Payload::new(vec![value])
    }
}

impl From<&str> for Payload {
    fn from(value: &str) -> Self {
        Payload::new(vec![Value::from(value)])
    }
}

impl From<String> for Payload {
    fn from(value: String) -> Self {
        Payload::new(vec![Value::from(value)])
    }
}

impl From<()> for Payload {
    fn from(_: ()) -> Self {
        Payload::empty()
    }
}

impl From<Bytes> for Payload {
    fn from(data: Bytes) -> Self {
        Payload::empty().with_binary(data)
    }
}

/// The placeholder of attachment `num`.
pub fn placeholder(num: usize) -> Value {
    serde_json::json!({ "_placeholder": true, "num": num })
}

/// The attachment number of a placeholder value.
pub fn placeholder_num(value: &Value) -> Option<usize> {
    let object = value.as_object()?;
    if object.get("_placeholder")? != &Value::Bool(true) {
        return None;
    }
    object.get("num")?.as_u64().map(|n| n as usize)
}

//! Session ids and the hook that makes them.

use std::fmt;
use std::sync::Arc;

use base64::Engine as _;

/// An Engine.IO session id: URL-safe, cheap to clone.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sid(Arc<str>);

impl Sid {
    /// Wraps a string as a session id.
    pub fn new(id: impl Into<Arc<str>>) -> Self {
        Sid(id.into())
    }

    /// The id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Sid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Sid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl std::borrow::Borrow<str> for Sid {
    fn borrow(&self) -> &str {
        &self.0
    }
}

/// Makes session ids. The cluster plugs in one that names the worker
/// process owning the session, so the master routes by reading the id.
///
/// Ids must be unique, unguessable (at least 120 random bits from a CSPRNG)
/// and URL-safe: they travel in query strings and cookies.
pub trait SidGenerator: Send + Sync + 'static {
    /// A new session id.
    fn generate(&self) -> Sid;
}

/// The default generator: 15 bytes (120 bits) from a CSPRNG, as 20
/// characters of URL-safe base64, like Node's `base64id`.
#[derive(Debug, Default, Clone, Copy)]
pub struct RandomSid;

impl SidGenerator for RandomSid {
    fn generate(&self) -> Sid {
        Sid::new(random_base64url::<15>())
    }
}

/// `N` bytes from a CSPRNG, as URL-safe base64 without padding.
///
/// The generator is `rand`'s thread-local one: ChaCha12, seeded from the
/// operating system's random source and reseeded from it every 64 KiB of
/// output. Asking the kernel for every id (the `getrandom` system call) cost
/// two system calls per session; this costs none.
pub fn random_base64url<const N: usize>() -> String {
    let mut bytes = [0u8; N];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn random_sids_are_20_url_safe_characters_and_distinct() {
        let mut seen = HashSet::new();
        for _ in 0..10_000 {
            let sid = RandomSid.generate();
            assert_eq!(sid.as_str().len(), 20);
            assert!(
                sid.as_str()
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            );
            assert!(seen.insert(sid));
        }
    }
}

//! Logging in to the admin namespace, as Node's basic authentication: the
//! CONNECT's `auth` carries `{username, password}` (checked against a
//! bcrypt hash), or the `sessionId` a previous login was given in a
//! `session` event; anything else gets `invalid credentials`.
//!
//! Two differences from Node, both because our servers are many:
//! - The session id is not kept in a store (Node's in-memory store forgets
//!   it on another worker, and its Redis store needs a Redis): it is a
//!   token `EXPIRY.NONCE.MAC`, the MAC an HMAC-SHA256 under a key derived
//!   from the username and the password's hash. Every worker of every node
//!   configured with the same credentials accepts it, restarts included,
//!   until it expires; changing the password revokes every token.
//! - Failed logins are throttled per client address (Node does not):
//!   bcrypt is slow on purpose, so guessing is slow, but each guess costs
//!   the server that same time. Past the allowed failures, a login from the
//!   address is refused before bcrypt runs.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use iocluster_socketio::{ConnectError, SocketRef};
use ring::hmac;
use serde_json::Value;

use crate::AdminUiError;

/// What Node's UI shows as a wrong password (it compares the message).
pub(crate) const INVALID_CREDENTIALS: &str = "invalid credentials";
/// Sent instead while an address is throttled.
const TOO_MANY_ATTEMPTS: &str = "too many failed logins, try again later";
/// Addresses remembered at most by the throttle (a flood from many
/// addresses forgets the oldest first).
const THROTTLE_CAPACITY: usize = 10_000;
/// Passwords checked at once by one server: bcrypt is slow on purpose, and
/// a flood of logins from many addresses must not take every core (or
/// grow the blocking pool to its limit).
const CONCURRENT_CHECKS: usize = 2;
/// How long a login waits for its turn before it is refused.
const CHECK_QUEUE_TIMEOUT: Duration = Duration::from_secs(5);

/// Checks logins for one instrumented server.
pub(crate) struct BasicAuth {
    username: String,
    password_hash: String,
    tokens: SessionTokens,
    throttle: LoginThrottle,
    checks: tokio::sync::Semaphore,
}

impl BasicAuth {
    /// `password_hash` must be a bcrypt hash.
    pub(crate) fn new(
        username: String,
        password_hash: String,
        session_duration: Duration,
        attempts: u32,
        window: Duration,
    ) -> Result<BasicAuth, AdminUiError> {
        password_hash
            .parse::<bcrypt::HashParts>()
            .map_err(|_| AdminUiError::InvalidPasswordHash)?;
        let tokens = SessionTokens::new(&username, &password_hash, session_duration);
        Ok(BasicAuth {
            username,
            password_hash,
            tokens,
            throttle: LoginThrottle::new(attempts, window),
            checks: tokio::sync::Semaphore::new(CONCURRENT_CHECKS),
        })
    }

    /// Lets `socket` in, or says why not. On a login with the password,
    /// returns the session id to give the UI.
    pub(crate) async fn check(&self, socket: &SocketRef) -> Result<Option<String>, ConnectError> {
        let auth = socket.auth();
        if let Some(Value::String(token)) = auth.get("sessionId")
            && self.tokens.verify(token, SystemTime::now())
        {
            return Ok(None);
        }
        // No password, no guess: nothing to count (the UI first tries its
        // saved session id, which may have expired).
        let (Some(Value::String(username)), Some(Value::String(password))) =
            (auth.get("username"), auth.get("password"))
        else {
            return Err(ConnectError::new(INVALID_CREDENTIALS));
        };
        let address = socket.session().handshake().remote_addr.map(|a| a.ip());
        if let Some(address) = address
            && !self.throttle.allows(address, Instant::now())
        {
            return Err(ConnectError::new(TOO_MANY_ATTEMPTS));
        }
        if *username != self.username {
            return Err(self.failed(address));
        }
        // bcrypt takes tens of milliseconds of CPU: off the runtime's
        // threads, a few at a time.
        let Ok(Ok(_turn)) = tokio::time::timeout(CHECK_QUEUE_TIMEOUT, self.checks.acquire()).await
        else {
            return Err(ConnectError::new(TOO_MANY_ATTEMPTS));
        };
        let password = password.clone();
        let hash = self.password_hash.clone();
        let matches = tokio::task::spawn_blocking(move || bcrypt::verify(password, &hash))
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or(false);
        if !matches {
            return Err(self.failed(address));
        }
        if let Some(address) = address {
            self.throttle.forget(address);
        }
        Ok(Some(self.tokens.issue(SystemTime::now())))
    }

    fn failed(&self, address: Option<IpAddr>) -> ConnectError {
        if let Some(address) = address {
            self.throttle.failed(address, Instant::now());
        }
        ConnectError::new(INVALID_CREDENTIALS)
    }
}

/// Session ids that any server with the same credentials can check.
struct SessionTokens {
    key: hmac::Key,
    duration: Duration,
}

impl SessionTokens {
    fn new(username: &str, password_hash: &str, duration: Duration) -> SessionTokens {
        // The key is derived from the credentials so that every server
        // configured alike agrees on it without sharing anything else.
        let mut material = Vec::new();
        material.extend_from_slice(b"iocluster admin-ui session\0");
        material.extend_from_slice(username.as_bytes());
        material.push(0);
        material.extend_from_slice(password_hash.as_bytes());
        let secret = ring::digest::digest(&ring::digest::SHA256, &material);
        SessionTokens {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret.as_ref()),
            duration,
        }
    }

    /// `EXPIRY.NONCE.MAC`: seconds since the epoch, 16 random bytes, and
    /// the HMAC of the two (base64url).
    fn issue(&self, now: SystemTime) -> String {
        let expiry = seconds(now).saturating_add(self.duration.as_secs());
        let mut nonce = [0u8; 16];
        // Without randomness the token is still unforgeable (the MAC);
        // only tokens issued in the same second would be equal.
        let _ = getrandom::fill(&mut nonce);
        let body = format!("{expiry}.{}", URL_SAFE_NO_PAD.encode(nonce));
        let tag = hmac::sign(&self.key, body.as_bytes());
        format!("{body}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
    }

    fn verify(&self, token: &str, now: SystemTime) -> bool {
        let Some((body, tag)) = token.rsplit_once('.') else {
            return false;
        };
        let Ok(tag) = URL_SAFE_NO_PAD.decode(tag) else {
            return false;
        };
        if hmac::verify(&self.key, body.as_bytes(), &tag).is_err() {
            return false;
        }
        body.split_once('.')
            .and_then(|(expiry, _)| expiry.parse::<u64>().ok())
            .is_some_and(|expiry| seconds(now) < expiry)
    }
}

fn seconds(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Failed logins per address within a window.
struct LoginThrottle {
    attempts: u32,
    window: Duration,
    failures: Mutex<HashMap<IpAddr, Failures>>,
}

#[derive(Clone, Copy)]
struct Failures {
    count: u32,
    since: Instant,
}

impl LoginThrottle {
    fn new(attempts: u32, window: Duration) -> LoginThrottle {
        LoginThrottle {
            attempts,
            window,
            failures: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, Failures>> {
        self.failures.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether `address` may try a password now.
    fn allows(&self, address: IpAddr, now: Instant) -> bool {
        match self.lock().get(&address) {
            Some(f) => now.duration_since(f.since) >= self.window || f.count < self.attempts,
            None => true,
        }
    }

    fn failed(&self, address: IpAddr, now: Instant) {
        let mut failures = self.lock();
        if failures.len() >= THROTTLE_CAPACITY && !failures.contains_key(&address) {
            failures.retain(|_, f| now.duration_since(f.since) < self.window);
            if failures.len() >= THROTTLE_CAPACITY {
                let oldest = failures
                    .iter()
                    .min_by_key(|(_, f)| f.since)
                    .map(|(a, _)| *a);
                if let Some(oldest) = oldest {
                    failures.remove(&oldest);
                }
            }
        }
        let entry = failures.entry(address).or_insert(Failures {
            count: 0,
            since: now,
        });
        if now.duration_since(entry.since) >= self.window {
            *entry = Failures {
                count: 0,
                since: now,
            };
        }
        entry.count = entry.count.saturating_add(1);
    }

    fn forget(&self, address: IpAddr) {
        self.lock().remove(&address);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH: &str = "$2b$04$abcdefghijklmnopqrstuu5lQ0cBVqmRt5q1h4i1zn6nfcHoMXAtK";

    fn tokens() -> SessionTokens {
        SessionTokens::new("admin", HASH, Duration::from_secs(60))
    }

    #[test]
    fn token_is_accepted_until_it_expires() {
        let now = SystemTime::now();
        let token = tokens().issue(now);
        assert!(tokens().verify(&token, now));
        assert!(tokens().verify(&token, now + Duration::from_secs(59)));
        assert!(!tokens().verify(&token, now + Duration::from_secs(61)));
    }

    #[test]
    fn token_of_other_credentials_or_altered_is_refused() {
        let now = SystemTime::now();
        let token = tokens().issue(now);
        let other = SessionTokens::new("root", HASH, Duration::from_secs(60));
        assert!(!other.verify(&token, now));
        let (expiry, rest) = token.split_once('.').unwrap();
        let later: u64 = expiry.parse::<u64>().unwrap() + 1000;
        assert!(!tokens().verify(&format!("{later}.{rest}"), now));
        assert!(!tokens().verify("", now));
        assert!(!tokens().verify("1.2.3", now));
    }

    #[test]
    fn throttle_refuses_after_the_allowed_failures_until_the_window_ends() {
        let throttle = LoginThrottle::new(2, Duration::from_secs(10));
        let address: IpAddr = "10.0.0.1".parse().unwrap();
        let now = Instant::now();
        assert!(throttle.allows(address, now));
        throttle.failed(address, now);
        assert!(throttle.allows(address, now));
        throttle.failed(address, now);
        assert!(!throttle.allows(address, now + Duration::from_secs(9)));
        assert!(throttle.allows("10.0.0.2".parse().unwrap(), now));
        assert!(throttle.allows(address, now + Duration::from_secs(10)));
        throttle.forget(address);
        assert!(throttle.allows(address, now));
    }

    #[test]
    fn malformed_hash_is_refused_at_start() {
        let result = BasicAuth::new(
            "admin".into(),
            "not a hash".into(),
            Duration::from_secs(1),
            1,
            Duration::from_secs(1),
        );
        assert!(matches!(result, Err(AdminUiError::InvalidPasswordHash)));
    }
}

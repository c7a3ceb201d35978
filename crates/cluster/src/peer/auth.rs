//! The handshake that opens every peer connection, before anything is
//! forwarded: each side proves it knows the shared secret (`--peer-secret`)
//! without sending it, over fresh nonces, so a connection from anyone else
//! is closed before a byte of a client's request crosses it, and a node
//! never forwards to an impostor.
//!
//! ```text
//! listener  → "IOCLP1" nonce_l(32)
//! connector → "IOCLP1" nonce_c(32) HMAC(secret, "connector" nonce_l nonce_c)
//! listener  → HMAC(secret, "listener" nonce_c nonce_l)
//! ```
//! HMAC-SHA256 (ring); the tags are compared in constant time.

use std::io;
use std::time::Duration;

use ring::hmac;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The protocol's name and version, first on the wire both ways.
const MAGIC: &[u8; 6] = b"IOCLP1";
const NONCE: usize = 32;
const TAG: usize = 32;
/// The longest a handshake may take.
pub(crate) const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// The shared secret of a fleet's peer links.
#[derive(Clone)]
pub(crate) struct PeerSecret(hmac::Key);

impl std::fmt::Debug for PeerSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PeerSecret(..)")
    }
}

impl PeerSecret {
    pub(crate) fn new(secret: &[u8]) -> Self {
        PeerSecret(hmac::Key::new(hmac::HMAC_SHA256, secret))
    }

    fn tag(&self, role: &[u8], first: &[u8], second: &[u8]) -> hmac::Tag {
        let mut context = hmac::Context::with_key(&self.0);
        context.update(role);
        context.update(first);
        context.update(second);
        context.sign()
    }

    fn verify(&self, role: &[u8], first: &[u8], second: &[u8], tag: &[u8]) -> io::Result<()> {
        let mut data = Vec::with_capacity(role.len() + first.len() + second.len());
        data.extend_from_slice(role);
        data.extend_from_slice(first);
        data.extend_from_slice(second);
        hmac::verify(&self.0, &data, tag).map_err(|_| refused("the peer does not know the secret"))
    }
}

fn refused(why: &str) -> io::Error {
    io::Error::new(io::ErrorKind::PermissionDenied, why.to_owned())
}

fn nonce() -> io::Result<[u8; NONCE]> {
    let mut nonce = [0u8; NONCE];
    getrandom::fill(&mut nonce).map_err(|e| io::Error::other(e.to_string()))?;
    Ok(nonce)
}

/// The listener's side: the connecting node must prove it knows the
/// secret, then is shown that this node does.
pub(crate) async fn accept<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    secret: &PeerSecret,
) -> io::Result<()> {
    let ours = nonce()?;
    let mut hello = Vec::with_capacity(MAGIC.len() + NONCE);
    hello.extend_from_slice(MAGIC);
    hello.extend_from_slice(&ours);
    stream.write_all(&hello).await?;
    let mut answer = [0u8; 6 + NONCE + TAG];
    stream.read_exact(&mut answer).await?;
    let (magic, rest) = answer.split_at(MAGIC.len());
    if magic != MAGIC {
        return Err(refused("not an iocluster peer"));
    }
    let (theirs, tag) = rest.split_at(NONCE);
    secret.verify(b"connector", &ours, theirs, tag)?;
    stream
        .write_all(secret.tag(b"listener", theirs, &ours).as_ref())
        .await?;
    stream.flush().await
}

/// The connecting side: proves it knows the secret, and checks that the
/// listener does.
pub(crate) async fn connect<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    secret: &PeerSecret,
) -> io::Result<()> {
    let mut hello = [0u8; 6 + NONCE];
    stream.read_exact(&mut hello).await?;
    let (magic, theirs) = hello.split_at(MAGIC.len());
    if magic != MAGIC {
        return Err(refused("not an iocluster peer"));
    }
    let ours = nonce()?;
    let mut answer = Vec::with_capacity(MAGIC.len() + NONCE + TAG);
    answer.extend_from_slice(MAGIC);
    answer.extend_from_slice(&ours);
    answer.extend_from_slice(secret.tag(b"connector", theirs, &ours).as_ref());
    stream.write_all(&answer).await?;
    let mut tag = [0u8; TAG];
    stream.read_exact(&mut tag).await?;
    secret.verify(b"listener", &ours, theirs, &tag)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn two_nodes_with_the_same_secret_shake_hands() {
        let secret = PeerSecret::new(b"s3cret");
        let (mut a, mut b) = tokio::io::duplex(256);
        let listener = {
            let secret = secret.clone();
            tokio::spawn(async move { accept(&mut a, &secret).await })
        };
        connect(&mut b, &secret).await.unwrap();
        listener.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn a_wrong_secret_is_refused_on_both_sides() {
        let (mut a, mut b) = tokio::io::duplex(256);
        let listener =
            tokio::spawn(async move { accept(&mut a, &PeerSecret::new(b"right")).await });
        let connector = connect(&mut b, &PeerSecret::new(b"wrong")).await;
        let refused = listener.await.unwrap().unwrap_err();
        assert_eq!(refused.kind(), io::ErrorKind::PermissionDenied);
        assert!(connector.is_err(), "the connector gets no listener tag");
    }

    #[tokio::test]
    async fn garbage_is_not_a_peer() {
        let (mut a, mut b) = tokio::io::duplex(256);
        let listener = tokio::spawn(async move { accept(&mut a, &PeerSecret::new(b"s")).await });
        b.write_all(&[b'G'; 6 + NONCE + TAG]).await.unwrap();
        assert!(listener.await.unwrap().is_err());
    }
}

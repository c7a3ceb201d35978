//! Picking a worker for a request that names no session.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::config::Balance;

/// A worker the balancer may choose, with its load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Candidate {
    /// Its slot.
    pub slot: usize,
    /// Live sessions plus connections handed over but not yet reported.
    pub load: usize,
}

/// The balancing state: a round-robin cursor.
#[derive(Debug, Default)]
pub(crate) struct Balancer {
    next: AtomicUsize,
}

impl Balancer {
    /// Picks among `candidates` (ready workers, in slot order).
    pub(crate) fn pick(
        &self,
        method: Balance,
        candidates: &[Candidate],
        remote: Option<IpAddr>,
        forwarded_for: Option<&str>,
    ) -> Option<usize> {
        if candidates.is_empty() {
            return None;
        }
        let index = match method {
            Balance::Random => random_below(candidates.len()),
            Balance::RoundRobin => self.next.fetch_add(1, Ordering::Relaxed) % candidates.len(),
            Balance::LeastConnection => {
                let least = candidates.iter().map(|c| c.load).min().unwrap_or(0);
                let tied: Vec<usize> = (0..candidates.len())
                    .filter(|&i| candidates[i].load == least)
                    .collect();
                tied[self.next.fetch_add(1, Ordering::Relaxed) % tied.len()]
            }
            Balance::IpHash => hash_index(&remote, candidates.len()),
            Balance::ForwardedFor => match forwarded_for.and_then(|v| v.split(',').next()) {
                Some(client) => hash_index(&client.trim(), candidates.len()),
                None => hash_index(&remote, candidates.len()),
            },
        };
        Some(candidates[index].slot)
    }
}

fn hash_index(value: &impl Hash, len: usize) -> usize {
    let mut hasher = DefaultHasher::new();
    value.hash(&mut hasher);
    (hasher.finish() % len as u64) as usize
}

fn random_below(len: usize) -> usize {
    let mut bytes = [0u8; 8];
    if getrandom::fill(&mut bytes).is_err() {
        return 0;
    }
    (u64::from_le_bytes(bytes) % len as u64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidates(loads: &[usize]) -> Vec<Candidate> {
        loads
            .iter()
            .enumerate()
            .map(|(slot, &load)| Candidate { slot, load })
            .collect()
    }

    #[test]
    fn round_robin_takes_each_in_turn() {
        let balancer = Balancer::default();
        let picks: Vec<_> = (0..6)
            .map(|_| {
                balancer
                    .pick(Balance::RoundRobin, &candidates(&[0, 0, 0]), None, None)
                    .unwrap()
            })
            .collect();
        assert_eq!(picks, vec![0, 1, 2, 0, 1, 2]);
    }

    #[test]
    fn least_connection_takes_the_least_loaded() {
        let balancer = Balancer::default();
        assert_eq!(
            balancer.pick(
                Balance::LeastConnection,
                &candidates(&[5, 2, 9]),
                None,
                None
            ),
            Some(1)
        );
    }

    #[test]
    fn ip_hash_is_stable_per_address() {
        let balancer = Balancer::default();
        let ip: IpAddr = "127.0.0.7".parse().unwrap();
        let first = balancer.pick(Balance::IpHash, &candidates(&[0, 0, 0]), Some(ip), None);
        for _ in 0..10 {
            assert_eq!(
                balancer.pick(Balance::IpHash, &candidates(&[0, 0, 0]), Some(ip), None),
                first
            );
        }
    }

    #[test]
    fn forwarded_for_hashes_the_first_address() {
        let balancer = Balancer::default();
        let a = balancer.pick(
            Balance::ForwardedFor,
            &candidates(&[0; 5]),
            None,
            Some("10.0.0.1, 10.0.0.2"),
        );
        let b = balancer.pick(
            Balance::ForwardedFor,
            &candidates(&[0; 5]),
            None,
            Some("10.0.0.1"),
        );
        assert_eq!(a, b);
    }

    #[test]
    fn no_candidate_no_pick() {
        assert_eq!(
            Balancer::default().pick(Balance::Random, &[], None, None),
            None
        );
    }
}

//! How what people type is kept: only hashes are stored, and comparisons take the same time
//! whatever the input. One-time codes are HMACed under a server key ([`CodeHasher`]); security
//! answers are hashed with argon2id ([`AnswerHasher`]) on a bounded blocking pool: at most one hash per core runs at
//! once (each takes ~19 MiB and tens of milliseconds), so a burst of submissions queues instead
//! of exhausting memory or starving the async workers (DESIGN.md, numbers to hold).

use std::sync::Arc;

use argon2::{
    password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString},
    Algorithm, Argon2, Params, Version,
};
use hmac::{Hmac, Mac};
use rand_core::OsRng;
use sha2::Sha256;
use subtle::ConstantTimeEq;
use tokio::sync::Semaphore;

/// OWASP's argon2id minimum: 19 MiB, 2 passes, 1 lane.
const MEMORY_KIB: u32 = 19_456;
const PASSES: u32 = 2;
const LANES: u32 = 1;

#[derive(Debug, Clone)]
pub struct AnswerHasher {
    permits: Arc<Semaphore>,
}

impl Default for AnswerHasher {
    fn default() -> Self {
        Self::new(std::thread::available_parallelism().map_or(2, |n| n.get()))
    }
}

/// The parameters, as an operator reads them.
pub fn parameters() -> String {
    format!("argon2id m={MEMORY_KIB} KiB, t={PASSES}, p={LANES}")
}

fn argon2() -> anyhow::Result<Argon2<'static>> {
    let params =
        Params::new(MEMORY_KIB, PASSES, LANES, None).map_err(|e| anyhow::anyhow!("argon2 params: {e}"))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

impl AnswerHasher {
    pub fn new(concurrency: usize) -> Self {
        Self { permits: Arc::new(Semaphore::new(concurrency.max(1))) }
    }

    /// The PHC string (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`) of a normalised answer.
    pub async fn hash(&self, answer: String) -> anyhow::Result<String> {
        // The permit goes with the hash, not the request: a client that hangs up stops waiting,
        // but its hash runs on to the end and holds its place in the bound until then.
        let queued = crate::metrics::global().argon2_queued();
        let permit = self.permits.clone().acquire_owned().await?;
        drop(queued);
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let salt = SaltString::generate(&mut OsRng);
            argon2()?
                .hash_password(answer.as_bytes(), &salt)
                .map(|h| h.to_string())
                .map_err(|e| anyhow::anyhow!("argon2: {e}"))
        })
        .await?
    }

    /// Whether a normalised answer matches a stored PHC string (constant-time inside argon2).
    pub async fn verify(&self, answer: String, stored: String) -> anyhow::Result<bool> {
        let queued = crate::metrics::global().argon2_queued();
        let permit = self.permits.clone().acquire_owned().await?;
        drop(queued);
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let parsed = PasswordHash::new(&stored).map_err(|e| anyhow::anyhow!("stored hash: {e}"))?;
            Ok(argon2()?.verify_password(answer.as_bytes(), &parsed).is_ok())
        })
        .await?
    }
}

/// Raw argon2id verifications a second on `threads` threads for about `duration`, with the
/// service's parameters and the same verification [`AnswerHasher::verify`] does, nothing else:
/// the bound the answer checks are measured against (`backend measure-argon2`, scripts/bench.sh),
/// and what an operator sizes a machine by.
pub fn verifications_per_second(threads: usize, duration: std::time::Duration) -> anyhow::Result<f64> {
    let salt = SaltString::generate(&mut OsRng);
    let stored =
        argon2()?.hash_password(b"oak road", &salt).map_err(|e| anyhow::anyhow!("argon2: {e}"))?.to_string();
    let started = std::time::Instant::now();
    let verified: anyhow::Result<Vec<u64>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads.max(1))
            .map(|_| {
                scope.spawn(|| -> anyhow::Result<u64> {
                    let mut count = 0;
                    while started.elapsed() < duration {
                        let parsed =
                            PasswordHash::new(&stored).map_err(|e| anyhow::anyhow!("stored hash: {e}"))?;
                        anyhow::ensure!(
                            argon2()?.verify_password(b"oak road", &parsed).is_ok(),
                            "did not verify"
                        );
                        count += 1;
                    }
                    Ok(count)
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().map_err(|_| anyhow::anyhow!("a worker panicked"))?).collect()
    });
    // Over the time until the last worker finished its last verification.
    Ok(verified?.iter().sum::<u64>() as f64 / started.elapsed().as_secs_f64())
}

/// Hashes one-time codes under a server key, so a copy of the database alone does not let
/// anyone try the (small) code space offline.
#[derive(Clone)]
pub struct CodeHasher {
    key: [u8; 32],
}

impl std::fmt::Debug for CodeHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CodeHasher(***)")
    }
}

impl CodeHasher {
    pub fn new(key: [u8; 32]) -> Self {
        Self { key }
    }

    /// HMAC-SHA-256 over the purpose and the code, so a code for one purpose never matches another.
    pub fn hash(&self, purpose: &str, code: &str) -> Vec<u8> {
        #[allow(clippy::expect_used, reason = "HMAC accepts keys of any length")]
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("any key length");
        mac.update(purpose.as_bytes());
        mac.update(&[0]);
        mac.update(code.as_bytes());
        mac.finalize().into_bytes().to_vec()
    }

    pub fn matches(&self, purpose: &str, code: &str, stored: &[u8]) -> bool {
        self.hash(purpose, code).ct_eq(stored).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_whose_request_gave_up_keeps_its_permit_until_it_ends() {
        let hasher = AnswerHasher::new(1);
        let stored = hasher.hash("blue moon".into()).await.unwrap();
        let abandoned = tokio::time::timeout(
            std::time::Duration::from_millis(1),
            hasher.verify("blue moon".into(), stored.clone()),
        )
        .await;
        assert!(abandoned.is_err(), "argon2 takes longer than a millisecond");
        assert_eq!(hasher.permits.available_permits(), 0, "the abandoned hash still runs, and counts");
        assert!(hasher.verify("blue moon".into(), stored).await.unwrap(), "the next one waits its turn");
        assert_eq!(hasher.permits.available_permits(), 1);
    }

    #[tokio::test]
    async fn hashes_are_salted_argon2id_and_verify_only_the_same_answer() {
        let hasher = AnswerHasher::new(2);
        let a = hasher.hash("oak road".into()).await.unwrap();
        let b = hasher.hash("oak road".into()).await.unwrap();
        assert!(a.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{a}");
        assert_ne!(a, b, "salted");
        assert!(hasher.verify("oak road".into(), a.clone()).await.unwrap());
        assert!(!hasher.verify("oak lane".into(), a).await.unwrap());
    }

    #[test]
    fn the_raw_rate_counts_verifications() {
        let rate = verifications_per_second(1, std::time::Duration::from_millis(1)).unwrap();
        assert!(rate > 0.0, "at least one verification ran: {rate}");
    }

    #[test]
    fn a_code_matches_only_its_own_hash_and_purpose() {
        let hasher = CodeHasher::new([7; 32]);
        let stored = hasher.hash("registration", "12345678");
        assert!(hasher.matches("registration", "12345678", &stored));
        assert!(!hasher.matches("registration", "12345679", &stored));
        assert!(!hasher.matches("unlock", "12345678", &stored));
        assert!(!CodeHasher::new([8; 32]).matches("registration", "12345678", &stored));
    }
}

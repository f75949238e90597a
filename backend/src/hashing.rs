//! How what people type is kept: only hashes are stored, and comparisons take the same time
//! whatever the input. One-time codes are HMACed under a server key ([`CodeHasher`]); security
//! answers are hashed with argon2id ([`AnswerHasher`]) by one worker thread per core, fed from
//! one queue: at most one hash per core runs at once (each takes ~19 MiB and tens of
//! milliseconds), so a burst of submissions queues instead of exhausting memory or starving the
//! async workers (DESIGN.md, numbers to hold).
//!
//! Issue 16's measurements shaped this:
//! - Each worker hashes in its own 19 MiB buffer, made once. Allocated per hash on tokio's
//!   blocking pool, glibc kept the freed buffers in the arenas of its many threads: 553 MB
//!   resident after registering 8 people, 757 MB after a burst, never given back.
//! - A worker takes its next job from the queue itself the moment it finishes one. With a
//!   semaphore and `spawn_blocking`, each hand-over went through an async task that had to be
//!   scheduled on a core the hashes were keeping busy: a fifth of the CPU idled with a hundred
//!   hashes waiting, and answer checks peaked at 77 % of argon2's raw rate.

use std::sync::{
    atomic::{AtomicUsize, Ordering},
    Arc, Mutex,
};

use argon2::{
    password_hash::{Output, ParamsString, PasswordHash, SaltString},
    Algorithm, Argon2, Block, Params, Version,
};
use hmac::{Hmac, Mac};
use rand_core::OsRng;
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// OWASP's argon2id minimum: 19 MiB, 2 passes, 1 lane.
const MEMORY_KIB: u32 = 19_456;
const PASSES: u32 = 2;
const LANES: u32 = 1;

/// Sends answers to the argon2 workers; cloned, it is the same queue and workers, which stop
/// when the last clone is dropped.
#[derive(Debug, Clone)]
pub struct AnswerHasher {
    jobs: std::sync::mpsc::Sender<Job>,
    /// Jobs queued and not yet taken, and jobs a worker is running (the tests read them).
    waiting: Arc<AtomicUsize>,
    #[cfg_attr(not(test), allow(dead_code, reason = "only the tests read it"))]
    running: Arc<AtomicUsize>,
    /// Submissions let past [`AnswerHasher::admit`] at once.
    admitted: Arc<tokio::sync::Semaphore>,
}

/// Submissions in flight per argon2 worker: enough that a worker finishing a hash finds the
/// next one queued, few enough that a burst waits at the door holding nothing.
const ADMITTED_PER_WORKER: usize = 4;

/// A submission's turn to be checked; the next waiting one goes when it is dropped.
#[derive(Debug)]
pub struct Admission(#[allow(dead_code, reason = "held for its drop")] tokio::sync::OwnedSemaphorePermit);

/// A worker's buffer: the blocks argon2 fills, grown (never shrunk) to what a hash needs.
type Memory = Vec<Block>;

/// One hash to run; `queued` counts its wait in the metrics until a worker takes it.
struct Job {
    work: Box<dyn FnOnce(&mut Memory) + Send>,
    queued: crate::metrics::QueuedHash,
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
    /// Starts `workers` argon2 threads.
    pub fn new(workers: usize) -> Self {
        let (jobs, queue) = std::sync::mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        let (waiting, running) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        for n in 0..workers.max(1) {
            let (queue, waiting, running) = (queue.clone(), waiting.clone(), running.clone());
            let worker = std::thread::Builder::new().name(format!("argon2-{n}")).spawn(move || {
                let mut memory = Memory::new();
                loop {
                    // The lock is held only while waiting for a job, never while hashing.
                    let next = queue.lock().unwrap_or_else(std::sync::PoisonError::into_inner).recv();
                    let Ok(Job { work, queued }) = next else { return };
                    waiting.fetch_sub(1, Ordering::SeqCst);
                    drop(queued);
                    running.fetch_add(1, Ordering::SeqCst);
                    // A job that panics fails its own request (its reply is dropped), not the worker.
                    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(&mut memory)));
                    running.fetch_sub(1, Ordering::SeqCst);
                }
            });
            if let Err(e) = worker {
                tracing::error!(error = %e, "could not start an argon2 worker");
            }
        }
        let admitted = Arc::new(tokio::sync::Semaphore::new(workers.max(1) * ADMITTED_PER_WORKER));
        Self { jobs, waiting, running, admitted }
    }

    /// Waits for a submission's turn, in arrival order. Without it, a burst (1,000 submissions
    /// at once, issue 16) had every request take its database connections before its hashes:
    /// those left waiting for a connection past the pool's 3 s were told 503 while the workers
    /// were busy with the rest. Waiting here holds no connection and no memory beyond the
    /// request, so every submission is answered, in turn.
    pub async fn admit(&self) -> anyhow::Result<Admission> {
        let permit = self.admitted.clone().acquire_owned().await?;
        Ok(Admission(permit))
    }

    /// Runs `hash` on a worker. A request that gives up while its job waits takes the job with
    /// it; once a worker has started it, it runs to the end and holds that worker until then, so
    /// hanging up cannot get more hashes running than there are workers.
    async fn run<T: Send + 'static>(
        &self,
        hash: impl FnOnce(&mut Memory) -> anyhow::Result<T> + Send + 'static,
    ) -> anyhow::Result<T> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let work = Box::new(move |memory: &mut Memory| {
            if !reply.is_closed() {
                let _ = reply.send(hash(memory));
            }
        });
        let queued = crate::metrics::global().argon2_queued();
        self.waiting.fetch_add(1, Ordering::SeqCst);
        self.jobs
            .send(Job { work, queued })
            .map_err(|_| anyhow::anyhow!("the argon2 workers have stopped"))?;
        answer.await.map_err(|_| anyhow::anyhow!("an argon2 job failed"))?
    }

    /// The PHC string (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`) of a normalised answer.
    pub async fn hash(&self, answer: String) -> anyhow::Result<String> {
        self.run(move |memory| hash_in(memory, answer.as_bytes())).await
    }

    /// Whether a normalised answer matches a stored PHC string (constant-time inside argon2).
    pub async fn verify(&self, answer: String, stored: String) -> anyhow::Result<bool> {
        self.run(move |memory| verify_in(memory, answer.as_bytes(), &stored)).await
    }
}

/// `memory`, grown to at least `blocks` blocks (a stored hash with larger parameters than
/// today's grows it).
fn blocks(memory: &mut Memory, blocks: usize) -> &mut [Block] {
    if memory.len() < blocks {
        memory.resize(blocks, Block::default());
    }
    &mut memory[..blocks]
}

/// The PHC string of `answer` under a new salt, computed in one of `memory`'s buffers.
fn hash_in(memory: &mut Memory, answer: &[u8]) -> anyhow::Result<String> {
    let argon2 = argon2()?;
    let salt = SaltString::generate(&mut OsRng);
    let mut salt_bytes = [0u8; 64];
    let raw_salt = salt.as_salt().decode_b64(&mut salt_bytes).map_err(|e| anyhow::anyhow!("salt: {e}"))?;
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    let memory = blocks(memory, argon2.params().block_count());
    argon2
        .hash_password_into_with_memory(answer, raw_salt, &mut out, memory)
        .map_err(|e| anyhow::anyhow!("argon2: {e}"))?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(argon2.params()).map_err(|e| anyhow::anyhow!("argon2 params: {e}"))?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out).map_err(|e| anyhow::anyhow!("argon2 output: {e}"))?),
    };
    Ok(phc.to_string())
}

/// Whether `answer` matches the PHC string `stored` (under the parameters it names), computed in
/// one of `memory`'s buffers and compared in constant time.
fn verify_in(memory: &mut Memory, answer: &[u8], stored: &str) -> anyhow::Result<bool> {
    let parsed = PasswordHash::new(stored).map_err(|e| anyhow::anyhow!("stored hash: {e}"))?;
    let algorithm = Algorithm::try_from(parsed.algorithm).map_err(|e| anyhow::anyhow!("stored hash: {e}"))?;
    let version = parsed
        .version
        .map(Version::try_from)
        .transpose()
        .map_err(|e| anyhow::anyhow!("stored hash: {e}"))?
        .unwrap_or_default();
    let params = Params::try_from(&parsed).map_err(|e| anyhow::anyhow!("stored hash: {e}"))?;
    let expected = parsed.hash.ok_or_else(|| anyhow::anyhow!("stored hash: no hash"))?;
    let mut salt_bytes = [0u8; 64];
    let salt = parsed
        .salt
        .ok_or_else(|| anyhow::anyhow!("stored hash: no salt"))?
        .decode_b64(&mut salt_bytes)
        .map_err(|e| anyhow::anyhow!("stored hash: {e}"))?;
    let memory = blocks(memory, params.block_count());
    let argon2 = Argon2::new(algorithm, version, params);
    let mut out = vec![0u8; expected.len()];
    argon2
        .hash_password_into_with_memory(answer, salt, &mut out, memory)
        .map_err(|e| anyhow::anyhow!("argon2: {e}"))?;
    Ok(out.as_slice().ct_eq(expected.as_bytes()).into())
}

/// Raw argon2id verifications a second on `threads` threads for about `duration`, with the
/// service's parameters and the same verification [`AnswerHasher::verify`] does, nothing else:
/// the bound the answer checks are measured against (`backend measure-argon2`, scripts/bench.sh),
/// and what an operator sizes a machine by.
pub fn verifications_per_second(threads: usize, duration: std::time::Duration) -> anyhow::Result<f64> {
    let stored = hash_in(&mut Memory::new(), b"oak road")?;
    let started = std::time::Instant::now();
    let verified: anyhow::Result<Vec<u64>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads.max(1))
            .map(|_| {
                scope.spawn(|| -> anyhow::Result<u64> {
                    let (mut count, mut memory) = (0, Memory::new());
                    while started.elapsed() < duration {
                        anyhow::ensure!(verify_in(&mut memory, b"oak road", &stored)?, "did not verify");
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
    use argon2::password_hash::{PasswordHasher, PasswordVerifier};

    use super::*;

    /// A job for `hasher`'s worker that says when it started and then waits to be let go.
    fn held_job(
        hasher: &AnswerHasher,
    ) -> (
        tokio::task::JoinHandle<anyhow::Result<()>>,
        std::sync::mpsc::Receiver<()>,
        std::sync::mpsc::Sender<()>,
    ) {
        let (started, on_start) = std::sync::mpsc::channel();
        let (go, wait) = std::sync::mpsc::channel::<()>();
        let hasher = hasher.clone();
        let task = tokio::spawn(async move {
            hasher
                .run(move |_| {
                    let _ = started.send(());
                    let _ = wait.recv();
                    Ok(())
                })
                .await
        });
        (task, on_start, go)
    }

    // Multi-threaded: the test blocks its thread waiting for a worker to start the held job.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_hash_whose_request_gave_up_runs_to_the_end_on_its_worker() {
        let hasher = AnswerHasher::new(1);
        let (request, started, go) = held_job(&hasher);
        started.recv().unwrap();
        request.abort();
        assert!(request.await.unwrap_err().is_cancelled());
        assert_eq!(
            hasher.running.load(Ordering::SeqCst),
            1,
            "the abandoned hash still runs, and holds the worker"
        );
        go.send(()).unwrap();
        let stored = hasher.hash("blue moon".into()).await.unwrap();
        assert!(hasher.verify("blue moon".into(), stored).await.unwrap(), "the worker goes on to the next");
    }

    // Multi-threaded: the test blocks its thread waiting for a worker to start the held job.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_hash_whose_request_gave_up_while_it_waited_is_never_run() {
        let hasher = AnswerHasher::new(1);
        let (busy, started, go) = held_job(&hasher);
        started.recv().unwrap();
        let ran = Arc::new(AtomicUsize::new(0));
        let waiting = tokio::spawn({
            let (hasher, ran) = (hasher.clone(), ran.clone());
            async move { hasher.run(move |_| Ok(ran.fetch_add(1, Ordering::SeqCst))).await }
        });
        // Let the waiting job reach the queue, then its request goes.
        while hasher.waiting.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        waiting.abort();
        let _ = waiting.await;
        go.send(()).unwrap();
        busy.await.unwrap().unwrap();
        // Jobs run in order: once a later one is done, the abandoned one was passed over.
        hasher.run(|_| Ok(())).await.unwrap();
        assert_eq!(ran.load(Ordering::SeqCst), 0, "no worker time spent on a request that left");
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
    fn hashes_made_in_kept_memory_are_standard_argon2id_both_ways() {
        let mut memory = Memory::new();
        let ours = hash_in(&mut memory, b"oak road").unwrap();
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(Argon2::default().verify_password(b"oak road", &parsed).is_ok(), "the library verifies ours");
        let salt = SaltString::generate(&mut OsRng);
        let theirs = argon2().unwrap().hash_password(b"oak road", &salt).unwrap().to_string();
        assert!(
            verify_in(&mut memory, b"oak road", &theirs).unwrap(),
            "we verify the library's (hashes stored before)"
        );
        assert!(!verify_in(&mut memory, b"oak lane", &theirs).unwrap());
        // Parameters other than today's are read from the stored hash.
        let small = Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::new(1024, 1, 1, None).unwrap());
        let older = small.hash_password(b"jaws", &salt).unwrap().to_string();
        assert!(verify_in(&mut memory, b"jaws", &older).unwrap());
        assert!(verify_in(&mut memory, b"jaws", "$argon2id$v=19$m=19456,t=2,p=1$bm90YmFzZTY0$x").is_err());
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

    #[tokio::test]
    async fn a_burst_of_submissions_is_let_in_a_few_per_worker_at_a_time() {
        let hasher = AnswerHasher::new(1);
        let mut admitted = Vec::new();
        for _ in 0..ADMITTED_PER_WORKER {
            admitted.push(hasher.admit().await.unwrap());
        }
        let next = tokio::spawn({
            let hasher = hasher.clone();
            async move { hasher.admit().await.map(drop) }
        });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(!next.is_finished(), "waits while the worker's share is in flight");
        admitted.pop();
        tokio::time::timeout(std::time::Duration::from_secs(5), next).await.unwrap().unwrap().unwrap();
    }
}

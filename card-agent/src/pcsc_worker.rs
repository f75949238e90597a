//! The blocking PC/SC side, on its own threads, talking to async code over channels.
//!
//! - The monitor thread waits in `SCardGetStatusChange` on every reader plus the PnP
//!   pseudo-reader (no polling loop) and pushes reader/card events. When pcscd stops it reports
//!   that, re-establishes its context once pcscd is back, and reports the readers again.
//! - The worker thread runs one card operation at a time, each inside a PC/SC transaction on a
//!   fresh connection, so nothing else on the workstation can interleave APDUs with ours.

use std::{
    collections::BTreeMap,
    ffi::CString,
    sync::{
        atomic::{AtomicBool, Ordering},
        mpsc, Arc, Mutex,
    },
    time::Duration,
};

use piv::host::{PivSession, Transport, TransportError};
use protocol::agent::{AgentErrorCode, Event, Outcome, ReaderInfo};
use tokio::sync::{broadcast, oneshot};

use crate::{
    ops::error,
    platform::{SMART_CARD_SERVICE, SMART_CARD_SERVICE_FIX},
};

/// `SCardTransmit` on a card inside a transaction.
pub struct PcscTransport<'a> {
    card: &'a pcsc::Card,
}

impl std::fmt::Debug for PcscTransport<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PcscTransport")
    }
}

impl Transport for PcscTransport<'_> {
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, TransportError> {
        let mut buffer = [0u8; pcsc::MAX_BUFFER_SIZE_EXTENDED];
        let response = self.card.transmit(command, &mut buffer).map_err(transport_error)?;
        if response.len() < 2 && self.card_went_away() {
            return Err(TransportError::CardRemoved);
        }
        Ok(response.to_vec())
    }
}

impl PcscTransport<'_> {
    /// A card never answers without a status word; some reader drivers (vpcd among them) hand
    /// back an empty answer when the card is pulled out mid-command, and only notice the removal
    /// on their next presence poll. Watch for up to a second before calling it malformed.
    fn card_went_away(&self) -> bool {
        for _ in 0..10 {
            match self.card.status2_owned() {
                Ok(status) if status.status().contains(pcsc::Status::PRESENT) => {}
                _ => return true,
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }
}

fn transport_error(e: pcsc::Error) -> TransportError {
    match e {
        pcsc::Error::RemovedCard | pcsc::Error::NoSmartcard | pcsc::Error::ResetCard => {
            TransportError::CardRemoved
        }
        pcsc::Error::ReaderUnavailable | pcsc::Error::UnknownReader => TransportError::ReaderGone,
        pcsc::Error::NoService | pcsc::Error::ServiceStopped => TransportError::ServiceUnavailable,
        other => TransportError::Other(other.to_string()),
    }
}

/// A card operation, run with a session on the named reader's card (inside a PC/SC transaction
/// on the worker thread, or on a test double).
pub type Work = Box<dyn FnOnce(&mut PivSession<&mut dyn Transport>) -> Outcome + Send>;

/// The card readers as the WebSocket service uses them: PC/SC ([`Pcsc`]) on a workstation, a
/// virtual card in the service's unit tests.
pub trait CardReaders: Clone + Send + Sync + 'static {
    /// The readers as last seen, and whether each holds a card.
    fn readers(&self) -> Vec<ReaderInfo>;
    /// Reader and card events from now on.
    fn subscribe(&self) -> broadcast::Receiver<Event>;
    /// Runs `work` on the card in `reader`, one operation at a time.
    fn run(&self, reader: String, work: Work) -> impl std::future::Future<Output = Outcome> + Send;
}

impl CardReaders for Pcsc {
    fn readers(&self) -> Vec<ReaderInfo> {
        Pcsc::readers(self)
    }

    fn subscribe(&self) -> broadcast::Receiver<Event> {
        Pcsc::subscribe(self)
    }

    async fn run(&self, reader: String, work: Work) -> Outcome {
        Pcsc::run(self, reader, work).await
    }
}

struct Job {
    reader: String,
    work: Work,
    reply: oneshot::Sender<Outcome>,
}

/// The async side's handle on the PC/SC threads.
#[derive(Debug, Clone)]
pub struct Pcsc {
    jobs: mpsc::Sender<Job>,
    events: broadcast::Sender<Event>,
    readers: Arc<Mutex<BTreeMap<String, bool>>>,
    /// Whether the monitor's last attempt reached the PC/SC service (its events say when it
    /// changes; this is for those who start listening after).
    available: Arc<AtomicBool>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Job {{ reader: {:?} }}", self.reader)
    }
}

impl Pcsc {
    /// Starts the monitor and worker threads.
    pub fn start() -> Self {
        let (jobs, job_rx) = mpsc::channel::<Job>();
        let (events, _) = broadcast::channel(64);
        let readers = Arc::new(Mutex::new(BTreeMap::new()));
        let monitor_events = events.clone();
        let monitor_readers = readers.clone();
        let available = Arc::new(AtomicBool::new(true));
        let monitor_available = available.clone();
        std::thread::Builder::new()
            .name("pcsc-monitor".into())
            .spawn(move || monitor(monitor_events, monitor_readers, monitor_available))
            .map(drop)
            .unwrap_or_else(|e| tracing::error!(%e, "cannot start the PC/SC monitor"));
        std::thread::Builder::new()
            .name("pcsc-worker".into())
            .spawn(move || worker(job_rx))
            .map(drop)
            .unwrap_or_else(|e| tracing::error!(%e, "cannot start the PC/SC worker"));
        Self { jobs, events, readers, available }
    }

    /// Whether the PC/SC service answered the monitor, as of its last try.
    pub fn service_available(&self) -> bool {
        self.available.load(Ordering::Relaxed)
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    /// The readers as the monitor last saw them.
    pub fn readers(&self) -> Vec<ReaderInfo> {
        let readers = self.readers.lock().unwrap_or_else(|p| p.into_inner());
        readers
            .iter()
            .map(|(name, present)| ReaderInfo { name: name.clone(), card_present: *present })
            .collect()
    }

    /// Runs `work` on the card in `reader` (one operation at a time).
    pub async fn run(&self, reader: String, work: Work) -> Outcome {
        let (reply, answer) = oneshot::channel();
        if self.jobs.send(Job { reader, work, reply }).is_err() {
            return Outcome::Error(error(AgentErrorCode::ServiceUnavailable, "The card worker has stopped."));
        }
        answer.await.unwrap_or_else(|_| {
            Outcome::Error(error(AgentErrorCode::CardError, "The card operation was interrupted."))
        })
    }
}

fn worker(jobs: mpsc::Receiver<Job>) {
    let mut context: Option<pcsc::Context> = None;
    for job in jobs {
        let outcome = run_job(&mut context, &job.reader, job.work);
        let _ = job.reply.send(outcome);
    }
}

fn run_job(context: &mut Option<pcsc::Context>, reader: &str, work: Work) -> Outcome {
    let unavailable = || {
        Outcome::Error(error(
            AgentErrorCode::ServiceUnavailable,
            format!("The smart card service ({SMART_CARD_SERVICE}) is not running on this computer."),
        ))
    };
    for attempt in 0..2 {
        let ctx = match context {
            Some(ctx) => ctx,
            None => match pcsc::Context::establish(pcsc::Scope::User) {
                Ok(ctx) => context.insert(ctx),
                Err(_) => return unavailable(),
            },
        };
        let Ok(name) = CString::new(reader) else {
            return Outcome::Error(error(AgentErrorCode::BadRequest, "Invalid reader name."));
        };
        let mut card = match ctx.connect(&name, pcsc::ShareMode::Shared, pcsc::Protocols::ANY) {
            Ok(card) => card,
            // pcscd restarted under us: a new context, once.
            Err(pcsc::Error::InvalidHandle | pcsc::Error::ServiceStopped | pcsc::Error::NoService)
                if attempt == 0 =>
            {
                *context = None;
                continue;
            }
            Err(pcsc::Error::NoSmartcard | pcsc::Error::RemovedCard) => {
                return Outcome::Error(error(AgentErrorCode::NoCard, "There is no card in the reader."));
            }
            Err(pcsc::Error::UnknownReader | pcsc::Error::ReaderUnavailable) => {
                return Outcome::Error(error(AgentErrorCode::NoReader, "That card reader is not connected."));
            }
            Err(pcsc::Error::NoService | pcsc::Error::ServiceStopped) => return unavailable(),
            Err(e) => {
                tracing::warn!(error = %e, "connect failed");
                return Outcome::Error(error(AgentErrorCode::CardError, "The card could not be reached."));
            }
        };
        let transaction = match card.transaction() {
            Ok(tx) => tx,
            Err(e) => {
                return Outcome::Error(crate::ops::from_host(piv::host::HostError::Transport(
                    transport_error(e),
                )));
            }
        };
        let mut transport = PcscTransport { card: &transaction };
        let mut session = PivSession::new(&mut transport as &mut dyn Transport);
        let outcome = work(&mut session);
        let _ = transaction.end(pcsc::Disposition::LeaveCard);
        return outcome;
    }
    unavailable()
}

fn send(events: &broadcast::Sender<Event>, event: Event) {
    tracing::info!(?event, "event");
    let _ = events.send(event);
}

fn monitor(
    events: broadcast::Sender<Event>,
    readers: Arc<Mutex<BTreeMap<String, bool>>>,
    available: Arc<AtomicBool>,
) {
    let mut reported_unavailable = false;
    loop {
        let ctx = match pcsc::Context::establish(pcsc::Scope::User) {
            Ok(ctx) => {
                available.store(true, Ordering::Relaxed);
                ctx
            }
            Err(e) => {
                available.store(false, Ordering::Relaxed);
                if !reported_unavailable {
                    // Said once, in words a person (or IT support) can act on; retried quietly.
                    tracing::error!(
                        error = %e,
                        "the smart card service ({SMART_CARD_SERVICE}) is not running or not installed: \
                         {SMART_CARD_SERVICE_FIX}; the agent keeps trying and carries on by itself once \
                         it answers"
                    );
                    forget_all(&events, &readers);
                    send(&events, Event::ServiceUnavailable);
                    reported_unavailable = true;
                }
                std::thread::sleep(Duration::from_millis(500));
                continue;
            }
        };
        match watch(&ctx, &events, &readers) {
            Ok(()) => return,
            Err(e) => {
                available.store(false, Ordering::Relaxed);
                tracing::warn!(error = %e, "PC/SC monitor lost pcscd; reconnecting");
                forget_all(&events, &readers);
                send(&events, Event::ServiceUnavailable);
                reported_unavailable = true;
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    }
}

/// Reports every known reader and card as gone (pcscd went away).
fn forget_all(events: &broadcast::Sender<Event>, readers: &Mutex<BTreeMap<String, bool>>) {
    let mut known = readers.lock().unwrap_or_else(|p| p.into_inner());
    for (reader, present) in std::mem::take(&mut *known) {
        if present {
            send(events, Event::CardRemoved { reader: reader.clone() });
        }
        send(events, Event::ReaderRemoved { reader });
    }
}

/// Waits for changes until pcscd fails (`Err`) or the context is cancelled (`Ok`).
fn watch(
    ctx: &pcsc::Context,
    events: &broadcast::Sender<Event>,
    readers: &Mutex<BTreeMap<String, bool>>,
) -> Result<(), pcsc::Error> {
    let mut states = vec![pcsc::ReaderState::new(pcsc::PNP_NOTIFICATION(), pcsc::State::UNAWARE)];
    loop {
        // Track exactly the readers pcscd has now.
        let names = match ctx.list_readers_owned() {
            Ok(names) => names,
            Err(pcsc::Error::NoReadersAvailable) => Vec::new(),
            Err(e) => return Err(e),
        };
        states.retain(|state| {
            let keep = is_pnp(state) || names.iter().any(|n| n.as_c_str() == state.name());
            if !keep {
                let name = state.name().to_string_lossy().into_owned();
                let mut known = readers.lock().unwrap_or_else(|p| p.into_inner());
                if known.remove(&name) == Some(true) {
                    send(events, Event::CardRemoved { reader: name.clone() });
                }
                send(events, Event::ReaderRemoved { reader: name });
            }
            keep
        });
        for name in names {
            if !states.iter().any(|s| s.name() == name.as_c_str()) {
                let reader = name.to_string_lossy().into_owned();
                readers.lock().unwrap_or_else(|p| p.into_inner()).insert(reader.clone(), false);
                send(events, Event::ReaderAdded { reader });
                states.push(pcsc::ReaderState::new(name, pcsc::State::UNAWARE));
            }
        }
        for state in &mut states {
            state.sync_current_state();
        }
        match ctx.get_status_change(None, &mut states) {
            Ok(()) => {}
            Err(pcsc::Error::Cancelled) => return Ok(()),
            Err(pcsc::Error::Timeout) => continue,
            Err(e) => return Err(e),
        }
        for state in &states {
            if is_pnp(state) || !state.event_state().contains(pcsc::State::CHANGED) {
                continue;
            }
            let name = state.name().to_string_lossy().into_owned();
            let present = state.event_state().contains(pcsc::State::PRESENT)
                && !state.event_state().contains(pcsc::State::MUTE);
            let mut known = readers.lock().unwrap_or_else(|p| p.into_inner());
            let before = known.insert(name.clone(), present).unwrap_or(false);
            drop(known);
            match (before, present) {
                (false, true) => send(events, Event::CardInserted { reader: name }),
                (true, false) => send(events, Event::CardRemoved { reader: name }),
                _ => {}
            }
        }
    }
}

fn is_pnp(state: &pcsc::ReaderState) -> bool {
    state.name() == pcsc::PNP_NOTIFICATION()
}

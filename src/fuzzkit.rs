//! A kit for fuzzing your own protocol handler on a deterministic twin
//! (feature `fuzzkit`).
//!
//! You give the kit three things:
//!
//! - **the handler**: your production server loop, generic over
//!   [`Namespace`](crate::Namespace), called with a [`Twin`]; it runs until it
//!   returns;
//! - **how to stop it**: a closure the kit calls once every client is done
//!   (usually: send your protocol's shutdown message). A handler that does not
//!   return after it is a violation: a deadlock if it blocks for good, and
//!   if it keeps running (polling with a timeout, spinning) a run that goes
//!   past the *stop limit* ([`Kit::stop_limit`]: by default
//!   [`DEFAULT_STOP_TIME`], an hour of virtual time, and
//!   [`DEFAULT_STOP_STEPS`] scheduling steps, after the stop was requested);
//! - **a client model** ([`Client`]): how a peer connects and sends one
//!   request drawn from fuzz bytes, and what it checks in the reply (your
//!   invariant); optionally a final check of the whole system ([`Kit::check`]).
//!
//! From the fuzzer's bytes the kit decodes a [`Scenario`]: the seed of the
//! deterministic scheduler ([`TwinBuilder::deterministic`](crate::twin::TwinBuilder::deterministic)),
//! a [`FaultPlan`](crate::twin::FaultPlan) (`ENOMEM` on send, `EINTR` on calls about to block, and
//! failing opens if you ask for them; each at most 25 %), the number of
//! clients and each client's script: requests (their bytes go to your model,
//! which picks messages, sizes and priorities), waits in virtual time,
//! restarts (the client drops its handles and connects again) and stops.
//! The handler, every client and the stopper run as [`Sim`](crate::twin::Sim)
//! participants: one interleaving per seed, virtual time that jumps when all
//! are blocked, a deadlock reported instead of hung.
//!
//! A violation — your model's `Err`, a panic in any participant, a deadlock
//! (a lost reply a client waits for forever), a handler that returns an
//! error or does not stop within the stop limit — comes back from [`Kit::run`] as a [`Violation`];
//! [`Kit::fuzz`] panics with it, so libFuzzer saves the input. The same bytes
//! replay the same run (everything is deterministic): give the saved file to
//! [`Kit::replay_file`] in a plain `cargo test`.
//!
//! ```
//! use mqtwin::fuzzkit::{retry, Client, Kit};
//! use mqtwin::twin::{Queue, Twin};
//! use mqtwin::{Error, MessageQueue, Namespace, OpenOptions};
//!
//! fn opts() -> OpenOptions { OpenOptions::read_write().create().capacity(4).max_msg_len(64) }
//! // The handler: echoes each request to "/reply" until an empty message.
//! fn serve<N: Namespace>(ns: &N) -> Result<(), Error> {
//!     let (req, reply) = (ns.open("/req", &opts())?, ns.open("/reply", &opts())?);
//!     loop {
//!         let (data, priority) = retry(|| req.receive_vec())?;
//!         if data.is_empty() { return Ok(()) }
//!         retry(|| reply.send(&data, priority))?;
//!     }
//! }
//! struct Peer { req: Queue, reply: Queue }
//! impl Client for Peer {
//!     fn connect(ns: &Twin, _id: usize) -> Result<Self, Error> {
//!         Ok(Peer { req: ns.open("/req", &opts())?, reply: ns.open("/reply", &opts())? })
//!     }
//!     fn request(&mut self, u: &mut arbitrary::Unstructured<'_>) -> Result<(), String> {
//!         let msg = [u.int_in_range(1..=255u8).unwrap_or(1)];
//!         retry(|| self.req.send(&msg, 0)).map_err(|e| e.to_string())?;
//!         let (got, _) = retry(|| self.reply.receive_vec()).map_err(|e| e.to_string())?;
//!         if got == msg { Ok(()) } else { Err(format!("sent {msg:?}, got {got:?}")) }
//!     }
//! }
//! let kit = Kit::<Peer>::new(
//!     |ns| serve(ns).map_err(|e| e.to_string()),
//!     |ns| { let _ = retry(|| ns.open("/req", &opts())?.send(b"", 0)); },
//! )
//! .max_clients(1);
//! assert!(kit.run(&[7; 64]).is_ok());
//! ```
//!
//! The guide, with a complete fuzz target: `docs/fuzzing.md`.

mod scenario;

use std::fmt;
use std::marker::PhantomData;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use arbitrary::Unstructured;

use crate::twin::Twin;
use crate::Error;

pub use arbitrary;
pub use scenario::{Event, Scenario, MAX_CLIENTS, MAX_EVENTS};

/// How much virtual time the run may take once the kit asks the handler to
/// stop (the default of [`Kit::stop_limit`]): an hour.
pub const DEFAULT_STOP_TIME: Duration = Duration::from_secs(3600);

/// How many scheduling steps (twin calls and blocking points, of every
/// participant) the run may take once the kit asks the handler to stop
/// (the default of [`Kit::stop_limit`]). A handler that exits takes a few;
/// a handler spinning on non-blocking calls is caught by this bound, in
/// well under a second.
pub const DEFAULT_STOP_STEPS: u64 = 100_000;

/// A simulated peer of your handler, and the invariant it checks.
///
/// Each client runs its script as one participant: [`connect`](Client::connect),
/// then a [`request`](Client::request) per request event; a restart drops
/// the client (its handles close) and connects again, a stop drops it.
pub trait Client: Sized + Send + 'static {
    /// Opens the client's queues. `id` is the client's number (`0..`),
    /// the same across its restarts.
    ///
    /// # Errors
    ///
    /// Any error opening them; the client then leaves (not a violation:
    /// an injected fault may cause it). Panic to report a violation.
    fn connect(ns: &Twin, id: usize) -> Result<Self, Error>;

    /// Sends one request decoded from `u` (message, size, priority), waits
    /// for its reply and checks it.
    ///
    /// # Errors
    ///
    /// A description of the broken invariant (a violation).
    fn request(&mut self, u: &mut Unstructured<'_>) -> Result<(), String>;
}

type Serve = dyn Fn(&Twin) -> Result<(), String> + Send + Sync;
type Stop = dyn Fn(&Twin) + Send + Sync;
type Check = dyn Fn(&Twin) -> Result<(), String> + Send + Sync;

/// The kit: your handler, how to stop it, your client model `C`, and the
/// limits of the scenarios it decodes. Build it once, [`run`](Kit::run) it
/// on every input.
pub struct Kit<C> {
    serve: Arc<Serve>,
    stop: Arc<Stop>,
    check: Option<Arc<Check>>,
    max_clients: usize,
    max_events: usize,
    open_faults: bool,
    stop_time: Duration,
    stop_steps: u64,
    client: PhantomData<fn() -> C>,
}

impl<C> fmt::Debug for Kit<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Kit")
            .field("max_clients", &self.max_clients)
            .field("max_events", &self.max_events)
            .field("open_faults", &self.open_faults)
            .field("stop_time", &self.stop_time)
            .field("stop_steps", &self.stop_steps)
            .finish_non_exhaustive()
    }
}

/// What went wrong in a run, with the decoded input. Its `Display` has the
/// seed, the scenario and how to replay it.
#[derive(Debug, Clone, PartialEq)]
pub struct Violation {
    /// What broke: the model's message, a panic, a deadlock report, a
    /// handler that did not stop.
    pub message: String,
    /// The decoded input.
    pub scenario: Scenario,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "mqtwin fuzzkit: violation (scheduler seed {}, fault seed {}):",
            self.scenario.seed,
            self.scenario.faults.seed()
        )?;
        writeln!(f, "{}", self.message.trim_end())?;
        writeln!(f, "scenario: {:?}", self.scenario)?;
        write!(
            f,
            "replay: the same input bytes replay this run exactly: `cargo +nightly fuzz run \
             <target> <crash file>`, or `Kit::replay_file(\"<crash file>\")` in a test \
             (leave MQTWIN_SEED and MQTWIN_SCHEDULE unset: they override the input's seed)"
        )
    }
}

impl std::error::Error for Violation {}

/// How a run went when nothing broke.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// The decoded input.
    pub scenario: Scenario,
    /// Requests the clients completed.
    pub requests: usize,
    /// Faults the twin injected.
    pub faults_injected: u64,
    /// The virtual time the run took.
    pub elapsed: Duration,
}

impl<C: Client> Kit<C> {
    /// A kit for the handler `serve` (your server loop, run until it
    /// returns; an `Err` is a violation) and `stop` (called once every
    /// client is done, from a participant: make `serve` return within the
    /// [stop limit](Kit::stop_limit)).
    pub fn new(
        serve: impl Fn(&Twin) -> Result<(), String> + Send + Sync + 'static,
        stop: impl Fn(&Twin) + Send + Sync + 'static,
    ) -> Self {
        Kit {
            serve: Arc::new(serve),
            stop: Arc::new(stop),
            check: None,
            max_clients: 3,
            max_events: 16,
            open_faults: false,
            stop_time: DEFAULT_STOP_TIME,
            stop_steps: DEFAULT_STOP_STEPS,
            client: PhantomData,
        }
    }

    /// A final invariant, checked on the twin after the handler returned
    /// (e.g. no queue left behind, every request accounted for).
    pub fn check(
        mut self,
        check: impl Fn(&Twin) -> Result<(), String> + Send + Sync + 'static,
    ) -> Self {
        self.check = Some(Arc::new(check));
        self
    }

    /// At most this many clients (default 3). Any value is taken: it is
    /// clamped to `1..=`[`MAX_CLIENTS`] (64; each client is a thread).
    pub fn max_clients(mut self, n: usize) -> Self {
        self.max_clients = n.clamp(1, MAX_CLIENTS);
        self
    }

    /// At most this many events per client (default 16). Any value is
    /// taken: it is clamped to at most [`MAX_EVENTS`] (4,096); 0 means no
    /// events (each client only connects).
    pub fn max_events(mut self, n: usize) -> Self {
        self.max_events = n.min(MAX_EVENTS);
        self
    }

    /// Bounds a run once the handler is asked to stop: from the moment the
    /// kit calls `stop`, the rest of the run (`stop` itself, the handler
    /// returning, anything they spawned) may take at most `time` of virtual
    /// time and `steps` scheduling steps (twin calls and blocking points of
    /// every participant). Past either, the run is a violation, `did not
    /// stop: …`, naming the participants still running and the call each
    /// is in. Both bounds are deterministic: the same input gets the same
    /// verdict. Defaults: [`DEFAULT_STOP_TIME`] (an hour) and
    /// [`DEFAULT_STOP_STEPS`] (100,000).
    ///
    /// Any values are taken (the sums saturate): `Duration::MAX` and
    /// `u64::MAX` are no bound (a handler polling with a timeout then runs
    /// forever); `(Duration::ZERO, 0)` fails every run at the stop.
    pub fn stop_limit(mut self, time: Duration, steps: u64) -> Self {
        self.stop_time = time;
        self.stop_steps = steps;
        self
    }

    /// Also inject failing opens (off by default: most handlers open their
    /// queues once and may give up when that fails).
    pub fn open_faults(mut self, on: bool) -> Self {
        self.open_faults = on;
        self
    }

    /// Decodes `bytes` into a [`Scenario`] (what [`run`](Kit::run) will run).
    pub fn scenario(&self, bytes: &[u8]) -> Scenario {
        Scenario::decode(bytes, self.max_clients, self.max_events, self.open_faults)
    }

    /// Runs the scenario decoded from `bytes`.
    ///
    /// # Errors
    ///
    /// The [`Violation`], if any.
    pub fn run(&self, bytes: &[u8]) -> Result<Report, Violation> {
        self.run_scenario(self.scenario(bytes))
    }

    /// Runs `bytes` and panics with the [`Violation`] (the fuzz target's
    /// body: libFuzzer saves the input that panicked).
    ///
    /// # Panics
    ///
    /// On a violation.
    pub fn fuzz(&self, bytes: &[u8]) {
        if let Err(v) = self.run(bytes) {
            panic!("{v}");
        }
    }

    /// Runs a saved input (a libFuzzer crash file, a kept regression).
    ///
    /// # Errors
    ///
    /// The [`Violation`], or a reading error as a violation naming the file.
    pub fn replay_file(&self, path: impl AsRef<Path>) -> Result<Report, Violation> {
        let path = path.as_ref();
        match std::fs::read(path) {
            Ok(bytes) => self.run(&bytes),
            Err(e) => Err(Violation {
                message: format!("cannot read {}: {e}", path.display()),
                scenario: self.scenario(&[]),
            }),
        }
    }

    /// Runs `scenario` (decoded by [`scenario`](Kit::scenario), or written
    /// by hand in a test).
    ///
    /// # Errors
    ///
    /// The [`Violation`], if any; a scenario with more than
    /// [`MAX_CLIENTS`] clients is not run and comes back as one.
    pub fn run_scenario(&self, scenario: Scenario) -> Result<Report, Violation> {
        let violation = |message: String| Violation {
            message,
            scenario: scenario.clone(),
        };
        if scenario.clients.len() > MAX_CLIENTS {
            return Err(violation(format!(
                "the scenario has {} clients, the kit runs at most {MAX_CLIENTS}",
                scenario.clients.len()
            )));
        }
        let ns = Twin::builder()
            .deterministic(scenario.seed)
            .faults(scenario.faults.clone())
            .build();
        let sim = ns.sim().expect("a deterministic twin has a Sim");
        let start = ns.now();
        let server = {
            let (ns, serve) = (ns.clone(), Arc::clone(&self.serve));
            sim.spawn(move || serve(&ns))
        };
        let clients: Vec<_> = scenario
            .clients
            .iter()
            .enumerate()
            .map(|(id, script)| {
                let (ns, script) = (ns.clone(), script.clone());
                sim.spawn(move || run_client::<C>(&ns, id, &script))
            })
            .collect();
        let stopper = {
            let (ns, stop, s) = (ns.clone(), Arc::clone(&self.stop), sim.clone());
            let (time, steps) = (self.stop_time, self.stop_steps);
            sim.spawn(move || {
                let mut outcomes = Vec::new();
                for c in clients {
                    outcomes.push(c.join());
                }
                // From here on the run must end within the stop limit.
                s.limit(time, steps);
                stop(&ns);
                outcomes
            })
        };
        let n = scenario.clients.len();
        let sim_failure = |e: crate::twin::SimError| violation(describe(&e, n));
        let outcomes = stopper.join().map_err(sim_failure)?;
        let served = server.join().map_err(sim_failure)?;
        let mut requests = 0;
        for (id, outcome) in outcomes.into_iter().enumerate() {
            match outcome {
                Ok(Ok(n)) => requests += n,
                Ok(Err(m)) => return Err(violation(format!("client {id}: {m}"))),
                Err(e) => return Err(sim_failure(e)),
            }
        }
        served.map_err(|m| violation(format!("the handler failed: {m}")))?;
        if let Some(check) = &self.check {
            check(&ns).map_err(|m| violation(format!("final check: {m}")))?;
        }
        Ok(Report {
            faults_injected: ns.faults_injected(),
            elapsed: ns.now().duration_since(start).unwrap_or_default(),
            scenario,
            requests,
        })
    }
}

/// A failed run, in the kit's terms (the twin's own report, printed to
/// stderr, has a replay recipe by seed that does not apply to the kit).
fn describe(e: &crate::twin::SimError, clients: usize) -> String {
    let who = |p: usize| match p {
        0 => "the handler".to_owned(),
        p if p <= clients => format!("client {}", p - 1),
        p if p == clients + 1 => "the stopper".to_owned(),
        p => format!("participant {p} (spawned by your code)"),
    };
    if let Some((exceeded, running)) = e.overrun() {
        let mut m = format!(
            "did not stop: still running after {exceeded} since the kit asked the handler \
             to stop (Kit::stop_limit)"
        );
        for (p, call) in running {
            m.push_str(&format!("\n  {} in {call}", who(*p)));
        }
        m
    } else if e.is_deadlock() {
        let mut m = "deadlock: every participant is blocked and no deadline is pending".to_owned();
        for (p, call) in e.blocked() {
            m.push_str(&format!("\n  {} blocked in {call}", who(p)));
        }
        m
    } else if let Some(m) = e.panic_message() {
        format!("a participant panicked: {m}")
    } else {
        // A stall (a participant blocked outside the twin): the twin's own
        // message says who and what to do.
        e.to_string()
    }
}

/// One client's script; the number of requests done, or the model's error.
fn run_client<C: Client>(ns: &Twin, id: usize, script: &[Event]) -> Result<usize, String> {
    let mut client = C::connect(ns, id).ok();
    let mut done = 0;
    for event in script {
        let Some(c) = client.as_mut() else { break };
        match event {
            Event::Request(bytes) => {
                c.request(&mut Unstructured::new(bytes))?;
                done += 1;
            }
            Event::Wait(d) => sleep(ns, *d),
            Event::Restart => {
                drop(client.take());
                client = C::connect(ns, id).ok();
            }
            Event::Stop => break,
        }
    }
    Ok(done)
}

/// Waits `d` of virtual time, for a client model that must let time pass
/// without touching its own queues (e.g. leave replies unread while the
/// handler's timeouts run): [`Sim::sleep`](crate::twin::Sim::sleep) on the
/// kit's deterministic twin. A participant sleeping here counts as blocked,
/// so the twin's clock jumps when every participant is; the scenario's
/// [`Event::Wait`] uses it too. It opens no queue (your final checks see
/// only your own) and no fault can cut it short: it always waits `d`
/// (saturating at the latest time the clock can show).
///
/// # Panics
///
/// When `ns` is not a deterministic twin or the caller is not one of its
/// participants (the kit's handler, clients and stopper always are): a
/// sleep there could not be woken by the scheduler.
pub fn sleep(ns: &Twin, d: Duration) {
    match ns.sim() {
        Some(sim) => sim.sleep(d),
        None => panic!(
            "mqtwin::fuzzkit::sleep: the twin is not deterministic; call it from a \
             participant of the kit's run (or use Sim::sleep)"
        ),
    }
}

/// Calls `f` again while it fails with an error the kernel can return
/// transiently and the kit injects ([`Error::Interrupted`],
/// [`Error::OutOfMemory`]); returns its first other result. For client
/// models (and handlers) that must survive injected faults.
///
/// # Errors
///
/// `f`'s first error that is not transient.
pub fn retry<T>(mut f: impl FnMut() -> Result<T, Error>) -> Result<T, Error> {
    loop {
        match f() {
            Err(Error::Interrupted | Error::OutOfMemory) => {}
            r => return r,
        }
    }
}

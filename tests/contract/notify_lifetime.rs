//! The life of a thread-notification callback (`Notify::Thread`) on both
//! backends: when it runs, when it is dropped, and that a callback owning
//! queue handles never deadlocks the crate (it is never run or dropped under
//! one of the crate's locks).
//!
//! Calls that used to hang run on a watchdog thread, so a regression fails
//! with a message instead of hanging the suite.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use mqtwin::{Error, MessageQueue, Namespace, Notify, OpenOptions};

use crate::harness::Harness;

const PATIENCE: Duration = Duration::from_secs(20);

fn small() -> OpenOptions {
    OpenOptions::read_write()
        .create()
        .capacity(2)
        .max_msg_len(16)
}

/// Runs `f` on its own thread and fails if it does not finish in time.
fn must_finish<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(PATIENCE)
        .unwrap_or_else(|_| panic!("{what}: did not finish within {PATIENCE:?} (deadlock?)"))
}

/// Counts live instances: what a callback owns, so a test can see when it
/// is dropped.
struct Owned {
    live: Arc<AtomicUsize>,
    _payload: Vec<u8>,
}

impl Owned {
    fn new(live: &Arc<AtomicUsize>, bytes: usize) -> Self {
        live.fetch_add(1, Ordering::SeqCst);
        Owned {
            live: Arc::clone(live),
            _payload: vec![7; bytes],
        }
    }
}

impl Drop for Owned {
    fn drop(&mut self) {
        self.live.fetch_sub(1, Ordering::SeqCst);
    }
}

fn callback_owning_a_handle_survives_cancel_and_drop<H: Harness>(h: &H) {
    let name = h.name("own-cancel");
    let q = h.ns().open(&name, &small()).unwrap();
    let owned = h.ns().open(&name, &small()).unwrap();
    q.notify(Notify::thread(move || drop(owned))).unwrap();
    must_finish(
        "cancel_notify, then drop, with a callback owning a handle",
        move || {
            q.cancel_notify().unwrap();
            drop(q);
        },
    );
}

fn callback_owning_a_handle_survives_the_drop_of_the_registering_handle<H: Harness>(h: &H) {
    let name = h.name("own-drop");
    let q = h.ns().open(&name, &small()).unwrap();
    let owned = h.ns().open(&name, &small()).unwrap();
    // A handle to another queue too: the kernel backend's table is global.
    let other = h.ns().open(&h.name("own-drop-other"), &small()).unwrap();
    q.notify(Notify::thread(move || drop((owned, other))))
        .unwrap();
    must_finish("drop of the registering handle", move || drop(q));
    // Every later close in the process still works.
    let later = h.ns().open(&name, &small()).unwrap();
    must_finish("an unrelated close afterwards", move || drop(later));
}

fn refused_registration_drops_its_callback_without_deadlock<H: Harness>(h: &H) {
    let name = h.name("own-busy");
    let q = h.ns().open(&name, &small()).unwrap();
    q.notify(Notify::None).unwrap();
    let owned = h.ns().open(&name, &small()).unwrap();
    let r = must_finish(
        "a Busy registration whose callback owns a handle",
        move || {
            let r = q.notify(Notify::thread(move || drop(owned)));
            drop(q);
            r
        },
    );
    assert_eq!(r, Err(Error::Busy));
}

fn fired_callback_runs_even_if_the_handle_closes_at_once<H: Harness>(h: &H) {
    // Fewer under miri, which interprets every step.
    const N: usize = if cfg!(miri) { 10 } else { 200 };
    let name = h.name("fired");
    let reader = h.ns().open(&name, &small()).unwrap();
    let (tx, rx) = mpsc::channel();
    let mut buf = [0u8; 16];
    for i in 0..N {
        let q = h.ns().open(&name, &small()).unwrap();
        let tx = tx.clone();
        q.notify(Notify::thread(move || {
            let _ = tx.send(i);
        }))
        .unwrap();
        q.send(b"x", 0).unwrap();
        // The notification fired during the send; closing now must not
        // take it back.
        drop(q);
        reader.receive(&mut buf).unwrap();
    }
    drop(tx);
    let mut ran: Vec<usize> = Vec::new();
    while ran.len() < N {
        match rx.recv_timeout(PATIENCE) {
            Ok(i) => ran.push(i),
            Err(_) => break,
        }
    }
    ran.sort_unstable();
    assert_eq!(ran, (0..N).collect::<Vec<_>>(), "callbacks that ran");
}

fn cancel_releases_the_callback_at_once_and_rearming_does_not_grow<H: Harness>(h: &H) {
    let q = h.ns().open(&h.name("rearm"), &small()).unwrap();
    let live = Arc::new(AtomicUsize::new(0));
    let (cycles, bytes) = if cfg!(miri) {
        (10, 64)
    } else {
        (2_000, 64 * 1024)
    };
    for cycle in 0..cycles {
        let owned = Owned::new(&live, bytes);
        q.notify(Notify::thread(move || drop(owned))).unwrap();
        assert_eq!(live.load(Ordering::SeqCst), 1);
        q.cancel_notify().unwrap();
        assert_eq!(
            live.load(Ordering::SeqCst),
            0,
            "cycle {cycle}: the cancelled callback (and its {bytes} bytes) is still alive"
        );
    }
}

fn close_releases_a_callback_that_never_fired<H: Harness>(h: &H) {
    let name = h.name("close-frees");
    let live = Arc::new(AtomicUsize::new(0));
    let q = h.ns().open(&name, &small()).unwrap();
    let owned = Owned::new(&live, 16);
    q.notify(Notify::thread(move || drop(owned))).unwrap();
    drop(q);
    // The kernel reports the removal to a reader thread: give it a moment.
    let deadline = std::time::Instant::now() + PATIENCE;
    while live.load(Ordering::SeqCst) != 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(
        live.load(Ordering::SeqCst),
        0,
        "closing leaked the callback"
    );
}

/// Many thread registrations pending at once (on the kernel backend more
/// than one notification socket serves: 64 per socket), then all fired.
fn many_pending_thread_registrations_all_fire<H: Harness>(h: &H) {
    const N: usize = if cfg!(miri) { 4 } else { 80 };
    let (tx, rx) = mpsc::channel();
    let queues: Vec<_> = (0..N)
        .map(|i| {
            let q = h.ns().open(&h.name("many"), &small()).unwrap();
            let tx = tx.clone();
            q.notify(Notify::thread(move || {
                let _ = tx.send(i);
            }))
            .unwrap();
            q
        })
        .collect();
    drop(tx);
    for q in &queues {
        q.send(b"x", 0).unwrap();
    }
    let mut ran: Vec<usize> = (0..N)
        .map_while(|_| rx.recv_timeout(PATIENCE).ok())
        .collect();
    ran.sort_unstable();
    assert_eq!(ran, (0..N).collect::<Vec<_>>(), "callbacks that ran");
}

crate::instantiate!(
    many_pending_thread_registrations_all_fire,
    callback_owning_a_handle_survives_cancel_and_drop,
    callback_owning_a_handle_survives_the_drop_of_the_registering_handle,
    refused_registration_drops_its_callback_without_deadlock,
    fired_callback_runs_even_if_the_handle_closes_at_once,
    cancel_releases_the_callback_at_once_and_rearming_does_not_grow,
    close_releases_a_callback_that_never_fired,
);

//! Notification (`mq_notify`, semantics reference §12) on both backends.
//!
//! Tests that expect a signal run in a child (`h.in_child`): on the kernel a
//! forked, single-threaded process that blocks the signal and collects it
//! with `sigtimedwait`; on the twin a simulated process whose signal inbox is
//! read. Registrations made by the test process itself use `Notify::None`
//! or a callback, never a signal, so nothing is ever delivered to the test
//! runner.

use std::sync::mpsc;
use std::time::Duration;

use mqtwin::notify::SI_MESGQ;
use mqtwin::{Error, MessageQueue, Namespace, Notify, OpenOptions, SignalInfo};

use crate::harness::{Caller, Child, Harness};

const SIG: i32 = 12; // SIGUSR2
const NO_SIGNAL: Duration = Duration::from_millis(100);
const A_SIGNAL: Duration = Duration::from_secs(5);

fn small() -> OpenOptions {
    OpenOptions::read_write()
        .create_new()
        .capacity(2)
        .max_msg_len(16)
}

fn signal_fires_once_on_empty_to_nonempty<H: Harness>(h: &H) {
    let name = h.name("fire");
    let out = h.in_child(&Child::default(), |ns| {
        ns.prepare_signal(SIG);
        let q = ns.open(&name, &small()).unwrap();
        q.notify(Notify::Signal {
            signal: SIG,
            value: 0x77,
        })
        .unwrap();
        q.send(b"a", 1).unwrap();
        let got = ns.wait_signal(SIG, A_SIGNAL);
        let expected = SignalInfo {
            signal: SIG,
            code: SI_MESGQ,
            value: 0x77,
            pid: ns.self_pid(),
            uid: ns.self_uid(),
        };
        // Non-empty → non-empty: nothing, and the registration was consumed.
        q.send(b"b", 1).unwrap();
        let second = ns.wait_signal(SIG, NO_SIGNAL);
        let again = q.notify(Notify::Signal {
            signal: SIG,
            value: 1,
        });
        format!("{:?} {:?} {:?}", got == Some(expected), second, again)
    });
    assert_eq!(out, "true None Ok(())");
}

fn registering_on_a_nonempty_queue_waits_for_drain_and_send<H: Harness>(h: &H) {
    let name = h.name("drain");
    let out = h.in_child(&Child::default(), |ns| {
        ns.prepare_signal(SIG);
        let q = ns.open(&name, &small()).unwrap();
        q.send(b"a", 0).unwrap();
        q.notify(Notify::Signal {
            signal: SIG,
            value: 5,
        })
        .unwrap();
        q.send(b"b", 0).unwrap();
        let before = ns.wait_signal(SIG, NO_SIGNAL).map(|s| s.value);
        let mut buf = [0; 16];
        q.receive(&mut buf).unwrap();
        q.receive(&mut buf).unwrap();
        let drained = ns.wait_signal(SIG, NO_SIGNAL).map(|s| s.value);
        q.send(b"c", 0).unwrap();
        let after = ns.wait_signal(SIG, A_SIGNAL).map(|s| s.value);
        format!("{before:?} {drained:?} {after:?}")
    });
    assert_eq!(out, "None None Some(5)");
}

fn second_registration_is_busy_even_for_the_owner<H: Harness>(h: &H) {
    let q = h.ns().open(&h.name("busy"), &small()).unwrap();
    assert_eq!(q.notify(Notify::None), Ok(()));
    assert_eq!(q.notify(Notify::None), Err(Error::Busy));
    assert_eq!(q.notify(Notify::thread(|| {})), Err(Error::Busy));
    let other = h.ns().open(&h.name("busy2"), &small()).unwrap();
    assert_eq!(
        other.notify(Notify::None),
        Ok(()),
        "registrations are per queue"
    );
}

fn signal_numbers_are_checked_first<H: Harness>(h: &H) {
    let q = h.ns().open(&h.name("signo"), &small()).unwrap();
    for bad in [65, -1, i32::MAX, i32::MIN] {
        assert_eq!(
            q.notify(Notify::Signal {
                signal: bad,
                value: 0
            }),
            Err(Error::InvalidSignal { signal: bad })
        );
    }
    q.notify(Notify::None).unwrap();
    // The signal check comes before the "already registered" check.
    assert_eq!(
        q.notify(Notify::Signal {
            signal: 65,
            value: 0
        }),
        Err(Error::InvalidSignal { signal: 65 })
    );
    assert_eq!(
        q.notify(Notify::Signal {
            signal: 64,
            value: 0
        }),
        Err(Error::Busy)
    );
}

fn signal_64_and_signal_0_are_accepted<H: Harness>(h: &H) {
    let name = h.name("sig0");
    let out = h.in_child(&Child::default(), |ns| {
        let q = ns.open(&name, &small()).unwrap();
        let r64 = q.notify(Notify::Signal {
            signal: 64,
            value: 0,
        });
        q.cancel_notify().unwrap();
        // Signal 0: accepted, consumed by the arrival, nothing delivered.
        let r0 = q.notify(Notify::Signal {
            signal: 0,
            value: 9,
        });
        let busy = q.notify(Notify::None);
        q.send(b"x", 0).unwrap();
        let consumed = q.notify(Notify::None);
        format!("{r64:?} {r0:?} {busy:?} {consumed:?}")
    });
    assert_eq!(out, "Ok(()) Ok(()) Err(Busy) Ok(())");
}

fn none_form_is_consumed_by_the_first_arrival<H: Harness>(h: &H) {
    let q = h.ns().open(&h.name("none"), &small()).unwrap();
    q.notify(Notify::None).unwrap();
    assert_eq!(q.notify(Notify::None), Err(Error::Busy));
    q.send(b"x", 0).unwrap();
    assert_eq!(
        q.notify(Notify::None),
        Ok(()),
        "one-shot: the arrival consumed it"
    );
}

fn thread_form_runs_the_callback_once<H: Harness>(h: &H) {
    let q = h.ns().open(&h.name("thread"), &small()).unwrap();
    let (tx, rx) = mpsc::channel();
    let main = std::thread::current().id();
    q.notify(Notify::thread(move || {
        let _ = tx.send(std::thread::current().id() != main);
    }))
    .unwrap();
    q.send(b"x", 0).unwrap();
    assert_eq!(
        rx.recv_timeout(A_SIGNAL),
        Ok(true),
        "called once, on another thread"
    );
    let mut buf = [0; 16];
    q.receive(&mut buf).unwrap();
    q.send(b"y", 0).unwrap();
    assert_eq!(
        rx.recv_timeout(NO_SIGNAL),
        Err(mpsc::RecvTimeoutError::Disconnected)
    );
    assert_eq!(q.notify(Notify::None), Ok(()));
}

fn handoff_to_a_blocked_receiver_does_not_fire<H: Harness>(h: &H) {
    let name = h.name("handoff");
    let out = h.in_child(&Child::default(), |ns| {
        ns.prepare_signal(SIG);
        let q = ns.open(&name, &small()).unwrap();
        q.notify(Notify::Signal {
            signal: SIG,
            value: 3,
        })
        .unwrap();
        std::thread::scope(|s| {
            let rx = s.spawn(|| {
                let mut buf = [0; 16];
                q.receive_timeout(&mut buf, Duration::from_secs(10))
                    .map(|r| r.priority)
            });
            ns.settle(1);
            q.send(b"direct", 4).unwrap();
            let got = rx.join().unwrap();
            let signal = ns.wait_signal(SIG, NO_SIGNAL);
            let still = q.notify(Notify::None);
            format!("{got:?} {signal:?} {still:?}")
        })
    });
    assert_eq!(out, "Ok(4) None Err(Busy)");
}

fn a_sender_moved_in_by_a_receive_does_not_fire<H: Harness>(h: &H) {
    let name = h.name("movein");
    let out = h.in_child(&Child::default(), |ns| {
        ns.prepare_signal(SIG);
        let q = ns
            .open(
                &name,
                &OpenOptions::read_write()
                    .create_new()
                    .capacity(1)
                    .max_msg_len(16),
            )
            .unwrap();
        q.send(b"first", 0).unwrap();
        q.notify(Notify::Signal {
            signal: SIG,
            value: 8,
        })
        .unwrap();
        std::thread::scope(|s| {
            let tx = s.spawn(|| q.send_timeout(b"second", 0, Duration::from_secs(10)));
            ns.settle(1);
            let mut buf = [0; 16];
            let r = q.receive(&mut buf).map(|r| r.len);
            let sent = tx.join().unwrap();
            let signal = ns.wait_signal(SIG, NO_SIGNAL);
            let still = q.notify(Notify::None);
            let count = q.attributes().unwrap().current_messages;
            format!("{r:?} {sent:?} {signal:?} {still:?} {count}")
        })
    });
    assert_eq!(out, "Ok(5) Ok(()) None Err(Busy) 1");
}

fn cancel_by_another_process_is_a_silent_no_op<H: Harness>(h: &H) {
    let name = h.name("cancel");
    let q = h.ns().open(&name, &small()).unwrap();
    q.notify(Notify::None).unwrap();
    let out = h.in_child(&Child::default(), |ns| {
        let mine = ns.open(&name, &OpenOptions::read_write()).unwrap();
        let cancel = mine.cancel_notify();
        let register = mine.notify(Notify::None);
        drop(mine); // a close by a non-owner does not deregister either
        format!("{cancel:?} {register:?}")
    });
    assert_eq!(out, "Ok(()) Err(Busy)");
    assert_eq!(q.notify(Notify::None), Err(Error::Busy), "still registered");
    assert_eq!(q.cancel_notify(), Ok(()));
    assert_eq!(
        q.notify(Notify::None),
        Ok(()),
        "the owner's cancel removed it"
    );
    assert_eq!(q.cancel_notify(), Ok(()));
    assert_eq!(q.cancel_notify(), Ok(()), "cancelling nothing succeeds");
}

fn any_close_by_the_owner_deregisters<H: Harness>(h: &H) {
    let name = h.name("close");
    let q = h.ns().open(&name, &small()).unwrap();
    // A separately opened handle.
    q.notify(Notify::None).unwrap();
    let other = h.ns().open(&name, &OpenOptions::write_only()).unwrap();
    assert_eq!(other.notify(Notify::None), Err(Error::Busy));
    drop(other);
    assert_eq!(
        q.notify(Notify::None),
        Ok(()),
        "closing another handle deregistered"
    );
    // Registered through a write-only handle, removed by closing the first.
    q.cancel_notify().unwrap();
    let wo = h.ns().open(&name, &OpenOptions::write_only()).unwrap();
    wo.notify(Notify::None).unwrap();
    let third = h.ns().open(&name, &OpenOptions::read_only()).unwrap();
    drop(third);
    assert_eq!(wo.notify(Notify::None), Ok(()));
}

fn unlink_does_not_deregister<H: Harness>(h: &H) {
    let name = h.name("unlink");
    let out = h.in_child(&Child::default(), |ns| {
        ns.prepare_signal(SIG);
        let q = ns.open(&name, &small()).unwrap();
        q.notify(Notify::Signal {
            signal: SIG,
            value: 2,
        })
        .unwrap();
        ns.unlink(&name).unwrap();
        let busy = q.notify(Notify::None);
        q.send(b"x", 0).unwrap();
        let fired = ns.wait_signal(SIG, A_SIGNAL).map(|s| s.value);
        format!("{busy:?} {fired:?}")
    });
    assert_eq!(out, "Err(Busy) Some(2)");
}

fn registration_needs_no_access<H: Harness>(h: &H) {
    let name = h.name("access");
    let _q = h.ns().open(&name, &small()).unwrap();
    let wo = h.ns().open(&name, &OpenOptions::write_only()).unwrap();
    assert_eq!(wo.notify(Notify::None), Ok(()));
    assert_eq!(wo.cancel_notify(), Ok(()));
    let ro = h.ns().open(&name, &OpenOptions::read_only()).unwrap();
    assert_eq!(ro.notify(Notify::None), Ok(()));
}

fn closing_a_dup_deregisters_but_setattr_does_not<H: Harness>(h: &H) {
    let name = h.name("dup");
    let q = h.ns().open(&name, &small()).unwrap();
    q.notify(Notify::None).unwrap();
    q.set_nonblocking(true).unwrap();
    q.set_nonblocking(false).unwrap();
    assert_eq!(
        q.notify(Notify::None),
        Err(Error::Busy),
        "setattr leaves it"
    );
    let mut buf = [0; 16];
    assert_eq!(q.try_receive(&mut buf), Err(Error::WouldBlock));
    assert_eq!(
        q.notify(Notify::None),
        Err(Error::Busy),
        "a receive leaves it"
    );
    let copy = h.dup(&q);
    drop(copy);
    assert_eq!(q.notify(Notify::None), Ok(()), "closing the dup removed it");
}

fn an_unlinked_queue_accepts_a_registration<H: Harness>(h: &H) {
    let name = h.name("gone");
    let q = h.ns().open(&name, &small()).unwrap();
    h.ns().unlink(&name).unwrap();
    assert_eq!(q.notify(Notify::None), Ok(()));
    assert_eq!(q.notify(Notify::None), Err(Error::Busy));
}

crate::instantiate!(
    closing_a_dup_deregisters_but_setattr_does_not,
    an_unlinked_queue_accepts_a_registration,
    signal_fires_once_on_empty_to_nonempty,
    registering_on_a_nonempty_queue_waits_for_drain_and_send,
    second_registration_is_busy_even_for_the_owner,
    signal_numbers_are_checked_first,
    signal_64_and_signal_0_are_accepted,
    none_form_is_consumed_by_the_first_arrival,
    thread_form_runs_the_callback_once,
    handoff_to_a_blocked_receiver_does_not_fire,
    a_sender_moved_in_by_a_receive_does_not_fire,
    cancel_by_another_process_is_a_silent_no_op,
    any_close_by_the_owner_deregisters,
    unlink_does_not_deregister,
    registration_needs_no_access,
);

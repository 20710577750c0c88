//! How a deterministic twin runs its participants (stackful coroutines on
//! one reused thread; OS threads under loom, Miri or
//! `--cfg mqtwin_sim_threads`): what each participant keeps of its own (its
//! number, its nice value), a stack overflow named, no thread spawned per
//! participant per run in steady state.

use std::time::Duration;

use mqtwin::twin::{set_thread_nice, thread_nice, Twin};
use mqtwin::{MessageQueue, Namespace, OpenOptions};

fn opts() -> OpenOptions {
    OpenOptions::read_write()
        .create()
        .capacity(4)
        .max_msg_len(64)
}

#[test]
fn each_participant_keeps_its_own_nice_value_and_number() {
    for seed in 0..20 {
        let ns = Twin::builder().deterministic(seed).build();
        let sim = ns.sim().expect("deterministic");
        let q = ns.open("/q", &opts()).unwrap();
        let handles: Vec<_> = (0..3)
            .map(|i| {
                let (q, s) = (q.try_clone().unwrap(), sim.clone());
                sim.spawn(move || {
                    assert_eq!(thread_nice(), 0, "a participant starts at 0");
                    set_thread_nice(i * 5);
                    for _ in 0..5 {
                        // Scheduling points: the others run in between.
                        q.attributes().unwrap();
                        s.sleep(Duration::from_millis(1));
                        assert_eq!(thread_nice(), i * 5, "seed {seed}: nice changed");
                    }
                    s.participant()
                })
            })
            .collect();
        for (i, h) in handles.into_iter().enumerate() {
            let id = h.id();
            assert_eq!(id, i);
            assert_eq!(h.join().unwrap(), Some(i));
        }
        assert_eq!(
            sim.participant(),
            None,
            "the test's thread is no participant"
        );
    }
}

#[test]
fn a_nice_value_orders_blocked_participants_as_for_threads() {
    // Participant 0 (nice 10) blocks first, participant 1 (nice 0) later:
    // nice 0 is served first, as in `set_thread_nice`'s example.
    let ns = Twin::builder().deterministic(3).build();
    let sim = ns.sim().expect("deterministic");
    let q = ns.open("/q", &opts()).unwrap();
    let (q0, q1) = (q.try_clone().unwrap(), q.try_clone().unwrap());
    let background = sim.spawn(move || {
        set_thread_nice(10);
        q0.receive(&mut [0; 64]).map(|m| m.priority)
    });
    let ns1 = ns.clone();
    let urgent = sim.spawn(move || {
        ns1.wait_blocked(1);
        q1.receive(&mut [0; 64]).map(|m| m.priority)
    });
    let ns2 = ns.clone();
    sim.spawn(move || {
        ns2.wait_blocked(2);
        q.send(b"first", 1).unwrap();
        q.send(b"second", 2).unwrap();
    });
    sim.run().unwrap();
    assert_eq!(urgent.join().unwrap(), Ok(1));
    assert_eq!(background.join().unwrap(), Ok(2));
}

/// The tids of this process's threads named `mqtwin-sim` (Linux).
#[cfg(target_os = "linux")]
fn sim_threads() -> std::collections::BTreeSet<u32> {
    (std::fs::read_dir("/proc/self/task").unwrap().flatten())
        .filter(|t| {
            let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
            comm.trim_end().starts_with("mqtwin-sim")
        })
        .filter_map(|t| t.file_name().to_str()?.parse().ok())
        .collect()
}

#[cfg(target_os = "linux")]
#[test]
fn runs_reuse_their_threads() {
    let run = |seed| {
        let ns = Twin::builder().deterministic(seed).build();
        let sim = ns.sim().expect("deterministic");
        let q = ns.open("/q", &opts()).unwrap();
        let rx = q.try_clone().unwrap();
        let got = sim.spawn(move || rx.receive(&mut [0; 64]).map(|m| m.len));
        sim.spawn(move || q.send(b"hi", 0).unwrap());
        sim.spawn(|| 7);
        assert_eq!(got.join().unwrap(), Ok(2));
    };
    for seed in 0..10 {
        run(seed);
    }
    let before = sim_threads();
    for seed in 10..310 {
        run(seed);
    }
    let new = sim_threads().difference(&before).count();
    // 900 participants in 300 runs; the other tests of this binary may run
    // beside this one and take a worker or two.
    assert!(
        new <= 4,
        "{new} new participant threads for 300 runs (before: {before:?})"
    );
}

/// Run only by [`a_stack_overflow_names_the_participant`], in a child.
#[test]
#[ignore = "a child of a_stack_overflow_names_the_participant"]
fn child_overflowing_a_participant_stack() {
    if std::env::var_os("MQTWIN_TEST_OVERFLOW").is_none() {
        panic!("run by a_stack_overflow_names_the_participant only");
    }
    #[allow(unconditional_recursion)] // on purpose: it overflows
    fn deep(n: u64) -> u64 {
        let pad = std::hint::black_box([n; 512]);
        pad[std::hint::black_box(3)].wrapping_add(deep(n + 1))
    }
    let ns = Twin::builder().deterministic(5).build();
    let sim = ns.sim().expect("deterministic");
    sim.spawn(|| 1);
    sim.spawn(|| deep(0));
    let _ = sim.run();
    unreachable!("the overflow ends the process");
}

#[cfg(target_os = "linux")]
#[test]
fn a_stack_overflow_names_the_participant() {
    use std::os::unix::process::ExitStatusExt;
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_overflowing_a_participant_stack",
            "--ignored",
            "--nocapture",
        ])
        .env("MQTWIN_TEST_OVERFLOW", "1")
        .env_remove("MQTWIN_SEED")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        matches!(
            out.status.signal(),
            Some(libc::SIGSEGV | libc::SIGBUS | libc::SIGABRT)
        ),
        "{:?}\n{err}",
        out.status
    );
    // Coroutines say it themselves; with `--cfg mqtwin_sim_threads` the
    // participant is a pooled thread, and std's own report names only the
    // pool's thread.
    let named = if cfg!(mqtwin_sim_threads) {
        err.contains("thread 'mqtwin-sim'") && err.contains("has overflowed its stack")
    } else {
        err.contains("mqtwin: participant 1 of a deterministic run (seed 5) overflowed its stack")
    };
    assert!(named, "{err}");
}

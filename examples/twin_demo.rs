//! The hello sender and receiver, running on the in-memory twin: no kernel
//! queue, no Linux needed, finished at once.
//!
//! ```text
//! cargo run --example twin_demo
//! cargo run --example twin_demo -- --count 5 --interval-ms 300 --priority 7
//! MQTWIN_SEED=7 cargo run --example twin_demo     # another interleaving
//! ```
//!
//! `examples/hello/mod.rs` holds the sender and receiver, written once,
//! generic over [`mqtwin::Namespace`]. The `sender` and `receiver` examples
//! run them as two processes against the Linux kernel; this one runs the
//! *same functions* as two participants of a deterministic twin, each acting
//! as its own simulated process (same user) in one namespace. The twin runs
//! them one at a time in an order drawn from a seed, and the pauses between
//! sends are virtual time: the program prints the same lines on every run.
//! Then it checks what a test would: every message arrived, in order, with
//! its priority, and the receiver's unlink left no queue behind. It exits
//! with status 1 if not.
//!
//! Takes the same options as the kernel examples (`--help`), with a default
//! interval of 100 ms instead of 1 s.

#[path = "hello/mod.rs"]
mod hello;

use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mqtwin::twin::{Credentials, Twin};

/// The demo's options when none are given.
pub fn defaults() -> hello::Config {
    hello::Config {
        interval: Duration::from_millis(100),
        ..hello::Config::default()
    }
}

/// One run: what the demo prints, whether every check passed, and the
/// twin's trace.
pub struct Demo {
    /// The lines the demo prints.
    pub output: String,
    /// Whether every check passed.
    pub ok: bool,
    /// The twin's trace.
    pub trace: String,
}

/// Runs the demo on a deterministic twin seeded with `seed`
/// (`MQTWIN_SEED` overrides it).
pub fn run(seed: u64, config: &hello::Config) -> Demo {
    // One twin namespace, seen by two simulated processes of the same user,
    // as two programs on one machine (or two containers in one pod) see one
    // IPC namespace.
    let receiver_ns = Twin::builder().deterministic(seed).trace().build();
    let sender_ns = receiver_ns.process(Credentials::user(1000, 1000));
    let sim = receiver_ns.sim().expect("built deterministic");
    let lines = Arc::new(Mutex::new(Vec::new()));
    let env = || {
        let (lines, sim) = (Arc::clone(&lines), sim.clone());
        hello::Env {
            pause: Box::new(move |d| sim.sleep(d)),
            log: Box::new(move |line| lines.lock().unwrap().push(line)),
        }
    };
    let say = |line: String| lines.lock().unwrap().push(line);

    say("mqtwin twin demo".into());
    say("================".into());
    say("The sender and receiver of examples/hello/mod.rs, as two participants (two".into());
    say("simulated processes) of a deterministic twin namespace: no kernel queue.".into());
    say(format!(
        "Queue {}, {} messages, {} ms apart (virtual time), seed {}.\n",
        config.queue,
        config.count,
        config.interval.as_millis(),
        sim.seed()
    ));

    let receiver = {
        let (ns, config, env) = (receiver_ns.clone(), config.clone(), env());
        sim.spawn(move || hello::run_receiver_in(&ns, &config, &env))
    };
    let sender = {
        let (config, env) = (config.clone(), env());
        sim.spawn(move || hello::run_sender_in(&sender_ns, &config, &env))
    };
    let sent = sender.join().unwrap_or_else(|e| panic!("{e}"));
    let received = receiver.join().unwrap_or_else(|e| panic!("{e}"));

    say(String::new());
    let mut ok = true;
    let mut check = |pass: bool, what: String| {
        say(format!("{} {what}", if pass { "✓" } else { "✗" }));
        ok &= pass;
    };
    match sent {
        Ok(()) => check(
            true,
            format!("the sender sent all {} messages", config.count),
        ),
        Err(e) => check(false, format!("the sender failed: {e}")),
    }
    match received {
        Ok(got) => {
            let expected: Vec<(String, u32)> = (1..=config.count)
                .map(|n| (hello::message(n), config.priority))
                .collect();
            check(
                got == expected,
                if got == expected {
                    format!(
                        "the receiver got all {} messages, in order, with priority {}",
                        config.count, config.priority
                    )
                } else {
                    format!("the receiver got {got:?}, expected {expected:?}")
                },
            );
        }
        Err(e) => check(false, format!("the receiver failed: {e}")),
    }
    // Queues in the namespace, counting unlinked ones still open: 0 means
    // the receiver's unlink and both handles' drop really removed the queue.
    let left = receiver_ns.queue_count();
    check(
        left == 0,
        if left == 0 {
            "no queue left behind: the twin holds 0 queues".to_owned()
        } else {
            format!("{left} queue(s) left behind in the twin")
        },
    );
    let output = lines.lock().unwrap().join("\n");
    Demo {
        output,
        ok,
        trace: receiver_ns.trace_dump(),
    }
}

#[allow(dead_code)] // tests/determinism.rs includes this file as a module
fn main() -> ExitCode {
    let config = hello::Config::from_env_or_exit(
        "twin_demo",
        "Runs the hello sender and receiver as two participants of a deterministic twin.",
        defaults(),
    );
    let demo = run(2024, &config);
    println!("{}", demo.output);
    if demo.ok {
        println!("\nAll good. Now try the same code on the kernel (Linux):");
        println!("  cargo run --example receiver &");
        println!("  cargo run --example sender -- --interval-ms 200");
        ExitCode::SUCCESS
    } else {
        eprintln!("\ntwin_demo: something went wrong (see the ✗ lines above)");
        ExitCode::FAILURE
    }
}

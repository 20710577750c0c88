//! The hello sender and receiver, running on the in-memory twin: no kernel
//! queue, no Linux needed, finished in about a second.
//!
//! ```text
//! cargo run --example twin_demo
//! cargo run --example twin_demo -- --count 5 --interval-ms 300 --priority 7
//! ```
//!
//! `examples/hello/mod.rs` holds the sender and receiver, written once,
//! generic over [`mqtwin::Namespace`]. The `sender` and `receiver` examples
//! run them as two processes against the Linux kernel; this one runs the
//! *same functions* as two threads, each acting as its own simulated process
//! (same user) in one `mqtwin::twin::Twin` namespace. Then it checks what a
//! test would: every message arrived, in order, with its priority, and the
//! receiver's unlink left no queue behind. It exits with status 1 if not.
//!
//! Takes the same options as the kernel examples (`--help`), with a default
//! interval of 100 ms instead of 1 s.

#[path = "hello/mod.rs"]
mod hello;

use std::process::ExitCode;
use std::time::Duration;

use mqtwin::twin::{Credentials, Twin};

fn main() -> ExitCode {
    let config = hello::Config::from_env_or_exit(
        "twin_demo",
        "Runs the hello sender and receiver as two threads over one in-memory twin.",
        hello::Config {
            interval: Duration::from_millis(100),
            ..hello::Config::default()
        },
    );

    // One twin namespace, seen by two simulated processes of the same user,
    // as two programs on one machine (or two containers in one pod) see one
    // IPC namespace.
    let receiver_ns = Twin::new();
    let sender_ns = receiver_ns.process(Credentials::user(1000, 1000));

    println!("mqtwin twin demo");
    println!("================");
    println!("The sender and receiver of examples/hello/mod.rs, as two threads (two");
    println!("simulated processes) over one in-memory twin namespace: no kernel queue.");
    println!(
        "Queue {}, {} messages, {} ms apart.\n",
        config.queue,
        config.count,
        config.interval.as_millis()
    );

    let (sent, received) = std::thread::scope(|s| {
        let receiver = s.spawn(|| hello::run_receiver(&receiver_ns, &config));
        let sender = s.spawn(|| hello::run_sender(&sender_ns, &config));
        (
            sender.join().expect("sender thread panicked"),
            receiver.join().expect("receiver thread panicked"),
        )
    });

    println!();
    let mut ok = true;
    let mut check = |pass: bool, what: String| {
        println!("{} {what}", if pass { "✓" } else { "✗" });
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

    if ok {
        println!("\nAll good. Now try the same code on the kernel (Linux):");
        println!("  cargo run --example receiver &");
        println!("  cargo run --example sender -- --interval-ms 200");
        ExitCode::SUCCESS
    } else {
        eprintln!("\ntwin_demo: something went wrong (see the ✗ lines above)");
        ExitCode::FAILURE
    }
}

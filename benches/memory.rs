//! `memory`: the twin's heap use per queued message, measured with a counting
//! global allocator (bytes requested from the allocator, live, and
//! allocations made). Prints a table and writes it as JSON to
//! `target/tmp/mqtwin-memory.json` for `docs/perf.py`.
//!
//! For each layout a privileged twin queue of capacity 65,536 is opened, then
//! N 64-byte messages are sent; the figure is (live bytes after − live bytes
//! before) / N. The target is at most payload + 64 bytes per message.

#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use mqtwin::{MessageQueue, Namespace, OpenOptions};

mod common;
use common::{MSG, MSG_LEN};

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static ALLOCS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards every call to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Relaxed);
        ALLOCS.fetch_add(1, Relaxed);
        System.alloc(layout)
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Relaxed);
        ALLOCS.fetch_add(1, Relaxed);
        System.alloc_zeroed(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Relaxed);
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size, Relaxed);
        LIVE.fetch_sub(layout.size(), Relaxed);
        ALLOCS.fetch_add(1, Relaxed);
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// One measured layout.
struct Case {
    name: &'static str,
    messages: usize,
    priorities: u32,
}

/// What filling a queue cost.
struct Measured {
    bytes_per_msg: f64,
    allocs_per_msg: f64,
    /// The same growth as glibc's heap sees it (chunk headers and rounding
    /// included), where available.
    heap_per_msg: Option<f64>,
}

/// Bytes glibc's allocator has handed out, chunk overhead included.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn heap_in_use() -> Option<usize> {
    // SAFETY: mallinfo2 only reads the allocator's statistics.
    let m = unsafe { libc::mallinfo2() };
    // Chunks in use in the heap arenas, plus blocks obtained with mmap.
    Some(m.uordblks + m.hblkhd)
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn heap_in_use() -> Option<usize> {
    None
}

fn measure(case: &Case) -> Measured {
    let ns = common::privileged_twin();
    let q = ns
        .open(
            "/mem",
            &OpenOptions::read_write()
                .create_new()
                .capacity(65_536)
                .max_msg_len(MSG_LEN),
        )
        .unwrap();
    let step = mqtwin::deadline::MQ_PRIO_MAX / case.priorities;
    let heap0 = heap_in_use();
    let (bytes0, allocs0) = (LIVE.load(Relaxed), ALLOCS.load(Relaxed));
    for i in 0..case.messages {
        q.try_send(&MSG, (i as u32 % case.priorities) * step)
            .unwrap();
    }
    let (bytes1, allocs1) = (LIVE.load(Relaxed), ALLOCS.load(Relaxed));
    let heap1 = heap_in_use();
    assert_eq!(q.attributes().unwrap().current_messages, case.messages);
    let n = case.messages as f64;
    Measured {
        bytes_per_msg: (bytes1 as f64 - bytes0 as f64) / n,
        allocs_per_msg: (allocs1 - allocs0) as f64 / n,
        heap_per_msg: heap0.zip(heap1).map(|(a, b)| (b as f64 - a as f64) / n),
    }
}

fn main() {
    // `cargo bench -- <filter>`: run only when the filter matches "memory".
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    if !filters.is_empty() && !filters.iter().any(|f| "memory".contains(f.as_str())) {
        return;
    }
    let cases = [
        Case {
            name: "65,536 messages, 1 priority",
            messages: 65_536,
            priorities: 1,
        },
        Case {
            name: "65,536 messages, 32,768 priorities (2 each)",
            messages: 65_536,
            priorities: 32_768,
        },
        Case {
            name: "32,768 messages, 32,768 priorities (1 each)",
            messages: 32_768,
            priorities: 32_768,
        },
        Case {
            name: "16,384 messages, 16,384 priorities (1 each)",
            messages: 16_384,
            priorities: 16_384,
        },
        Case {
            name: "1,000 messages, 1,000 priorities (1 each)",
            messages: 1_000,
            priorities: 1_000,
        },
        Case {
            name: "10 messages, 10 priorities (1 each)",
            messages: 10,
            priorities: 10,
        },
    ];
    println!(
        "memory: twin heap per queued {MSG_LEN}-byte message (target <= payload + 64 = {} bytes)",
        MSG_LEN + 64
    );
    let mut json = Vec::new();
    for case in &cases {
        let m = measure(case);
        let overhead = m.bytes_per_msg - MSG_LEN as f64;
        let heap = m
            .heap_per_msg
            .map_or(String::new(), |h| format!("  glibc heap {h:.1} bytes/msg"));
        println!(
            "memory: {:<45} {:>7.1} bytes/msg (payload + {:>5.1})  {:.3} allocations/msg{heap}  {}",
            case.name,
            m.bytes_per_msg,
            overhead,
            m.allocs_per_msg,
            if overhead <= 64.0 { "met" } else { "MISSED" }
        );
        let heap = m.heap_per_msg.map_or("null".into(), |h| format!("{h:.2}"));
        json.push(format!(
            "{{\"case\": \"{}\", \"messages\": {}, \"priorities\": {}, \"bytes_per_msg\": {:.2}, \"allocs_per_msg\": {:.4}, \"heap_per_msg\": {heap}}}",
            case.name, case.messages, case.priorities, m.bytes_per_msg, m.allocs_per_msg
        ));
    }
    // The worst case over many depths, one message per priority up to 32,768
    // (the slab grows by half when full, so the figure depends on N). Below
    // 32 messages the queue's fixed costs (the first index node, the first
    // slots: a few hundred bytes) dominate any per-message figure.
    let mut worst = (0.0f64, 0usize);
    let mut n = 32usize;
    while n <= 65_536 {
        let case = Case {
            name: "sweep",
            messages: n,
            priorities: n.min(32_768) as u32,
        };
        let m = measure(&case);
        if m.bytes_per_msg > worst.0 {
            worst = (m.bytes_per_msg, n);
        }
        n += (n / 16).max(1);
    }
    let overhead = worst.0 - MSG_LEN as f64;
    println!(
        "memory: worst over N = 32..65,536 (1 per priority)     {:>7.1} bytes/msg (payload + {:>5.1}) at N = {}  {}",
        worst.0,
        overhead,
        worst.1,
        if overhead <= 64.0 { "met" } else { "MISSED" }
    );
    json.push(format!(
        "{{\"case\": \"worst over N = 32..65,536, 1 per priority (at N = {})\", \"messages\": {}, \"priorities\": {}, \"bytes_per_msg\": {:.2}, \"allocs_per_msg\": null, \"heap_per_msg\": null}}",
        worst.1, worst.1, worst.1.min(32_768), worst.0
    ));
    let path = concat!(env!("CARGO_TARGET_TMPDIR"), "/mqtwin-memory.json");
    if let Err(e) = std::fs::write(path, format!("[\n  {}\n]\n", json.join(",\n  "))) {
        eprintln!("memory: could not write {path}: {e}");
    }
}

//! Fuzzes the protocol handler of `examples/protocol/mod.rs` (a key-value
//! request/response service) through the twin, with virtual time and
//! injected faults. The input type, the model and every assertion live in
//! `fuzz/src_shared/protocol_handler.rs`, which `tests/fuzz_regressions.rs`
//! also includes to replay `fuzz/regressions/protocol_handler/*` on stable.
//!
//! ```text
//! cd fuzz && cargo +nightly fuzz run protocol_handler -- -runs=1000000
//! ```

#![no_main]

#[path = "../../examples/protocol/mod.rs"]
mod protocol;
#[path = "../src_shared/protocol_handler.rs"]
mod protocol_harness;

use libfuzzer_sys::fuzz_target;

// A typed input decodes the bytes exactly as `protocol_harness::run_bytes`
// does (`Input::arbitrary_take_rest`), and lets `cargo fuzz fmt` print it.
fuzz_target!(|input: protocol_harness::Input| {
    let _ = protocol_harness::run(&input);
});

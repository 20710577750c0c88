//! Fuzzes the key-value service of `examples/protocol/mod.rs` with
//! `mqtwin::fuzzkit` (the real server loop, several clients, faults,
//! interleavings, restarts, corrupted frames, full reply queues). The model
//! is `examples/protocol/kit.rs`; the input's first byte picks the
//! service's configuration.
#![no_main]
#[path = "../../examples/protocol/mod.rs"]
mod protocol;
#[path = "../../examples/protocol/kit.rs"]
mod protocol_kit;

libfuzzer_sys::fuzz_target!(|data: &[u8]| protocol_kit::fuzz(data));

//! Fuzzes the key-value service of `examples/protocol/mod.rs` with
//! `mqtwin::fuzzkit` (the real server loop, several clients, faults,
//! interleavings, restarts). The model is `fuzz/src_shared/protocol_kit.rs`.
#![no_main]
#[path = "../../examples/protocol/mod.rs"]
mod protocol;
#[path = "../src_shared/protocol_kit.rs"]
mod protocol_kit;

libfuzzer_sys::fuzz_target!(|data: &[u8]| protocol_kit::kit().fuzz(data));

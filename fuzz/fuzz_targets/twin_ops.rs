//! Arbitrary operation sequences on the twin alone, checked after every
//! step against the reference model and the queue invariants
//! (`mqtwin::testing::fuzz::twin_ops`). Runs on every OS the twin runs on.
//!
//! `cargo +nightly fuzz run twin_ops`

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    mqtwin::testing::fuzz::twin_ops(data);
});

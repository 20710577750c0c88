//! Arbitrary client bytes at a real twin server (`mqtwin::remote::Server`):
//! after a valid handshake when the first byte is even, raw otherwise. The
//! server must close the connection (no hang), stay up, and serve the next
//! client (`mqtwin::remote::fuzz::frames`). Unix only.
//!
//! `cargo +nightly fuzz run remote_frames`

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    mqtwin::remote::fuzz::frames(data);
});

//! The same operation sequences on the twin and on the kernel in lockstep,
//! every outcome and handle state compared (`mqtwin::testing::fuzz::twin_vs_kernel`).
//! Linux only, as root: the kernel side runs in a private IPC namespace as a
//! fresh unprivileged uid, so names never collide and everything is removed
//! when the fuzzer exits, even on a crash.
//!
//! `cargo +nightly fuzz run twin_vs_kernel`

#![no_main]

#[cfg(target_os = "linux")]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    mqtwin::testing::fuzz::twin_vs_kernel(data);
});

#[cfg(not(target_os = "linux"))]
libfuzzer_sys::fuzz_target!(|_data: &[u8]| {
    // The kernel backend exists only on Linux.
});

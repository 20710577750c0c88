//! Deterministic pseudo-random fuzz inputs for stable tests of the fuzz kit
//! (`tests/fuzzkit.rs`, `tests/protocol_kit.rs`): twin-only, so apart from
//! `tests/common/mod.rs`, which needs the kernel backend.

/// Input `i`, `len` bytes (splitmix64): the same bytes on every run and OS.
pub fn input(i: u64, len: usize) -> Vec<u8> {
    let mut state = i.wrapping_mul(0x2545_F491_4F6C_DD1D);
    (0..len)
        .map(|_| {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            (z ^ (z >> 31)) as u8
        })
        .collect()
}

//! Compiles the C half of libmqtwin (src/shim.c) into the Rust library.
//!
//! Cross-checking from another OS (`cargo check --target
//! x86_64-apple-darwin` on Linux) usually has no C compiler for the
//! target: then the shim is left out with a warning, which a check does
//! not need; a build for the host always compiles it or fails.

fn main() {
    println!("cargo:rerun-if-changed=src/shim.c");
    let result = cc::Build::new()
        .file("src/shim.c")
        .warnings(true)
        .extra_warnings(true)
        .try_compile("mqtwin_capi_shim");
    if let Err(e) = result {
        let target = std::env::var("TARGET").unwrap_or_default();
        let host = std::env::var("HOST").unwrap_or_default();
        if target == host {
            panic!("compiling capi/src/shim.c failed: {e}");
        }
        println!(
            "cargo:warning=capi/src/shim.c not compiled for {target} (no C compiler for it: {e}); \
             fine for cargo check, a build for {target} needs one"
        );
    }
}

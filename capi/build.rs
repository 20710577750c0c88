//! Compiles the C half of libmqtwin (src/shim.c) into the Rust library.

fn main() {
    println!("cargo:rerun-if-changed=src/shim.c");
    cc::Build::new()
        .file("src/shim.c")
        .warnings(true)
        .extra_warnings(true)
        .compile("mqtwin_capi_shim");
}

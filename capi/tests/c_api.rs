//! The C test program (tests/c/mqtest.c) on every backing, compared line
//! by line with glibc on the kernel.
//!
//! Variants (`VARIANTS`): glibc + the kernel (`-lrt`), libmqtwin linked
//! (`-I capi/include -lmqtwin`), libmqtwin by `LD_PRELOAD` under the glibc
//! binary, and both of those again with `MQTWIN_SOCKET` naming a twin server
//! (`mqtwin::remote::Server`, what `mqtwin serve` runs) that the test hosts
//! with the kernel's limits. Only the differences in `ALLOWED` may appear,
//! each with its reason.

#![cfg(target_os = "linux")]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A run of the C program: its binary, extra environment.
struct Variant {
    name: &'static str,
    /// Which build of mqtest: "kernel" (glibc's header, -lrt) or "link".
    binary: &'static str,
    preload: bool,
    /// Through a twin server (`MQTWIN_SOCKET`) the test starts.
    server: bool,
    /// More environment.
    env: &'static [(&'static str, &'static str)],
}

const VARIANTS: &[Variant] = &[
    Variant {
        name: "libmqtwin linked",
        binary: "link",
        preload: false,
        server: false,
        env: &[],
    },
    Variant {
        name: "libmqtwin LD_PRELOAD",
        binary: "kernel",
        preload: true,
        server: false,
        env: &[],
    },
    Variant {
        name: "libmqtwin linked, via the server",
        binary: "link",
        preload: false,
        server: true,
        env: &[],
    },
    Variant {
        name: "libmqtwin LD_PRELOAD, via the server",
        binary: "kernel",
        preload: true,
        server: true,
        env: &[],
    },
];

/// A twin server for one run, on a socket of its own, with the kernel's
/// limits; shut down when dropped.
struct Served {
    server: Option<mqtwin::remote::Server>,
    path: PathBuf,
}

impl Served {
    fn start() -> Served {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("mqtwin-capi-{}-{n}.sock", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let twin = mqtwin::twin::Twin::new();
        twin.set_limits(mqtwin::posix::Kernel::limits().expect("the kernel's limits"))
            .expect("the kernel's limits suit the twin");
        let server = mqtwin::remote::Server::bind(&path, twin).expect("a twin server");
        Served {
            server: Some(server),
            path,
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(s) = self.server.take() {
            s.shutdown();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

/// (kernel's line, libmqtwin's line, why).
const ALLOWED: &[(&str, &str, &str)] = &[
    (
        "fork: child send 0",
        "fork: child send ENOTRECOVERABLE",
        "an in-process twin cannot be shared with a fork() child: its calls fail loudly",
    ),
    (
        "fork: child second send 0",
        "fork: child second send ENOTRECOVERABLE",
        "every call of the child fails, not only the first",
    ),
];

fn target_dir() -> PathBuf {
    // target/<profile>/deps/c_api-HASH → target/<profile>
    let exe = std::env::current_exe().expect("test executable path");
    exe.parent()
        .and_then(Path::parent)
        .expect("target/<profile>")
        .to_path_buf()
}

fn capi_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn run_ok(cmd: &mut Command, what: &str) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Builds libmqtwin.so from the staticlib cargo just built, and the two
/// builds of mqtest. Returns (dir with the libraries, dir with binaries).
fn build() -> (PathBuf, PathBuf) {
    static BUILT: std::sync::OnceLock<(PathBuf, PathBuf)> = std::sync::OnceLock::new();
    BUILT.get_or_init(build_once).clone()
}

/// The staticlib cargo built for this test: the newest
/// `deps/libmqtwin_capi-*.a` (cargo test does not copy it up).
fn staticlib(profile_dir: &Path) -> PathBuf {
    std::fs::read_dir(profile_dir.join("deps"))
        .expect("target/<profile>/deps")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            name.starts_with("libmqtwin_capi-") && name.ends_with(".a")
        })
        .max_by_key(|p| p.metadata().and_then(|m| m.modified()).ok())
        .expect("cargo builds libmqtwin_capi-*.a with the tests")
}

fn build_once() -> (PathBuf, PathBuf) {
    let bin = target_dir().join("mqtest");
    std::fs::create_dir_all(&bin).expect("mqtest dir");
    let lib = bin.clone();
    run_ok(
        Command::new("bash")
            .arg(capi_dir().join("build-lib.sh"))
            .arg("--from")
            .arg(staticlib(&target_dir()))
            .arg(&lib),
        "capi/build-lib.sh --from",
    );
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let src = capi_dir().join("tests/c/mqtest.c");
    let common = ["-Wall", "-Wextra", "-Wno-nonnull", "-Werror", "-O0"];
    run_ok(
        Command::new(&cc)
            .args(common)
            .arg("-o")
            .arg(bin.join("kernel"))
            .arg(&src)
            .args(["-lrt", "-lpthread"]),
        "cc mqtest (glibc, -lrt)",
    );
    run_ok(
        Command::new(&cc)
            .args(common)
            .arg("-I")
            .arg(capi_dir().join("include"))
            .arg("-o")
            .arg(bin.join("link"))
            .arg(&src)
            .arg("-L")
            .arg(&lib)
            .arg(format!("-Wl,-rpath,{}", lib.display()))
            .args(["-lmqtwin", "-lrt", "-lpthread"]),
        "cc mqtest (-lmqtwin ahead of -lrt)",
    );
    (lib, bin)
}

/// The kernel's limits, for the twin runs to match.
fn kernel_limits() -> Vec<(&'static str, String)> {
    [
        ("MQTWIN_MSG_MAX", "msg_max"),
        ("MQTWIN_MSGSIZE_MAX", "msgsize_max"),
        ("MQTWIN_QUEUES_MAX", "queues_max"),
        ("MQTWIN_MSG_DEFAULT", "msg_default"),
        ("MQTWIN_MSGSIZE_DEFAULT", "msgsize_default"),
    ]
    .iter()
    .filter_map(|(var, file)| {
        let v = std::fs::read_to_string(format!("/proc/sys/fs/mqueue/{file}")).ok()?;
        Some((*var, v.trim().to_string()))
    })
    .collect()
}

/// Runs a command for at most `limit`, returning (exit code, stdout, stderr).
fn run_bounded(mut cmd: Command, limit: Duration) -> (Option<i32>, String, String) {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn mqtest");
    let mut stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
    let out_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait mqtest") {
            break Some(s);
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = out_reader.join().expect("stdout reader");
    let err = err_reader.join().expect("stderr reader");
    match status {
        Some(s) => (s.code(), out, err),
        None => panic!("mqtest ran over {limit:?} and was killed:\n{out}\n{err}"),
    }
}

fn mqtest(bin: &Path, lib: &Path, v: &Variant, extra: &[(&str, String)]) -> Command {
    let mut cmd = Command::new(bin.join(v.binary));
    cmd.env_remove("MQTWIN_SOCKET");
    // cargo test puts target/<profile> on LD_LIBRARY_PATH, which wins over
    // the binary's RUNPATH: a libmqtwin.so left there by an earlier
    // build-lib.sh would be loaded instead of the one built for this run.
    cmd.env("LD_LIBRARY_PATH", lib);
    if v.preload {
        cmd.env("LD_PRELOAD", lib.join("libmqtwin.so"));
    }
    for (k, val) in extra {
        cmd.env(k, val);
    }
    for (k, val) in v.env {
        cmd.env(k, val);
    }
    cmd
}

#[test]
fn the_c_program_runs_identically_on_the_kernel_and_on_libmqtwin() {
    let (lib, bin) = build();
    let (code, kernel, kernel_err) =
        run_bounded(Command::new(bin.join("kernel")), Duration::from_secs(90));
    if code == Some(2) && kernel.contains("ENOSYS") {
        println!("skipped (kernel): no POSIX message queues here:\n{kernel}");
        return;
    }
    assert_eq!(
        code,
        Some(0),
        "glibc + kernel run failed:\n{kernel}\n{kernel_err}"
    );
    assert!(kernel.contains("done: 10 cases"), "{kernel}");
    let limits = kernel_limits();
    for v in VARIANTS {
        let served = v.server.then(Served::start);
        let mut extra = limits.clone();
        if let Some(s) = &served {
            extra.push(("MQTWIN_SOCKET", s.path.display().to_string()));
        }
        let (code, twin, err) = run_bounded(mqtest(&bin, &lib, v, &extra), Duration::from_secs(90));
        drop(served);
        assert_eq!(code, Some(0), "{}: exit {code:?}\n{twin}\n{err}", v.name);
        let (k, t): (Vec<&str>, Vec<&str>) = (kernel.lines().collect(), twin.lines().collect());
        let mut problems = Vec::new();
        for i in 0..k.len().max(t.len()) {
            let (kl, tl) = (
                k.get(i).copied().unwrap_or("<none>"),
                t.get(i).copied().unwrap_or("<none>"),
            );
            if kl != tl && !ALLOWED.iter().any(|(a, b, _)| *a == kl && *b == tl) {
                problems.push(format!(
                    "line {}: kernel {kl:?}\n        {}: {tl:?}",
                    i + 1,
                    v.name
                ));
            }
        }
        assert!(problems.is_empty(), "{}:\n{}", v.name, problems.join("\n"));
        // The forked child said why, once, on stderr.
        assert_eq!(
            err.matches("libmqtwin: this process is a fork() child")
                .count(),
            1,
            "{}: stderr {err:?}",
            v.name
        );
        println!(
            "{}: {} lines, the kernel's (allowed differences: {})",
            v.name,
            t.len(),
            ALLOWED.len()
        );
    }
}

#[test]
fn a_socket_or_a_bad_variable_fails_every_call_loudly() {
    let (lib, bin) = build();
    for v in VARIANTS.iter().filter(|v| !v.server) {
        let cases: [(&str, &str, &str, &str); 3] = [
            (
                "MQTWIN_SOCKET",
                "/tmp/no-such-mqtwin-server",
                "ENOENT",
                "MQTWIN_SOCKET",
            ),
            (
                "MQTWIN_MSG_MAX",
                "ten",
                "EINVAL",
                "MQTWIN_MSG_MAX=\"ten\" is not an integer",
            ),
            (
                "MQTWIN_VIRTUAL_TIME",
                "yes",
                "EINVAL",
                "MQTWIN_VIRTUAL_TIME",
            ),
        ];
        for (var, value, errno, said) in cases {
            let mut cmd = mqtest(&bin, &lib, v, &[]);
            cmd.arg("open").env(var, value);
            let (_, out, err) = run_bounded(cmd, Duration::from_secs(30));
            assert!(
                out.contains(&format!("open: noslash -1 {errno}"))
                    && out.contains(&format!("open: missing -1 {errno}")),
                "{} {var}={value}: {out}\nstderr: {err}",
                v.name
            );
            assert_eq!(
                err.matches("libmqtwin: ").count(),
                1,
                "{} {var}: {err}",
                v.name
            );
            assert!(err.contains(said), "{} {var}: {err}", v.name);
        }
    }
}

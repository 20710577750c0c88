//! [`Sandbox`]: the kernel side of a lockstep run, isolated in forked
//! processes.
//!
//! ```text
//! test process ──pipes── controller (root, private IPC namespace)
//!                          ├──pipes── user 0 (uid, groups, umask, caps, rlimit)
//!                          ├──pipes── user 1
//!                          └── ...
//! ```
//!
//! The controller `unshare(CLONE_NEWIPC)`s, so names, `queues_count` and the
//! sysctls belong to the run alone and everything dies with it; it writes
//! the sysctls of each scenario and unlinks every pool name between
//! scenarios (as root with `CAP_FOWNER`). Each user is a child of the
//! controller that changed its identity once and keeps one
//! [`Driver<Kernel>`](super::Driver). Ops travel in a compact binary form;
//! outcomes and handle states come back as their `Debug` text, which the
//! twin side formats the same way. The controller exits when the test
//! process's end of its command pipe closes (the `Sandbox` is dropped, or
//! the process dies, however it dies), and the user processes die with the
//! controller (`PR_SET_PDEATHSIG`), so nothing outlives a crashed test.
//!
//! Per-user `RLIMIT_MSGQUEUE` accounting is global to the machine, so users
//! should have uids nothing else uses ([`Sandbox::fresh_uid`]).

#![allow(unsafe_code)]

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

use crate::posix::Kernel;
use crate::queue::Namespace;
use crate::twin::{Capabilities, Credentials};

use crate::error::Error;

use super::driver::{Driver, NamePool, QueueFile, TestQueue};
use super::op::wire::Wire;
use super::op::{Op, Sysctls};

impl TestQueue for crate::posix::Queue {
    fn duplicate(&self) -> Result<Self, Error> {
        self.try_clone()
    }

    fn inspect(&self) -> Option<QueueFile> {
        // `read()` of an mqueue descriptor gives
        // "QSIZE:<n> NOTIFY:<m> SIGNO:<s> NOTIFY_PID:<pid>" (EBADF without
        // read access). Read through this very descriptor: closing a `dup`
        // would remove this process's notification registration.
        let mut buf = [0u8; 256];
        // SAFETY: `buf` is valid for `buf.len()` bytes; the descriptor is open.
        let n = unsafe { libc::pread(self.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        let n = usize::try_from(n).ok()?;
        let text = std::str::from_utf8(&buf[..n]).ok()?;
        let field = |key: &str| -> Option<u64> {
            let rest = &text[text.find(key)? + key.len()..];
            rest.split_whitespace().next()?.parse().ok()
        };
        Some(QueueFile {
            queued_bytes: usize::try_from(field("QSIZE:")?).ok()?,
            notify_registered: field("NOTIFY_PID:")? != 0,
        })
    }
}

/// Serialises forks of this process: a fork while another thread holds a
/// lock the child needs could deadlock the child.
static FORK: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// What one step produced on the kernel side, as `Debug` text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepRecord {
    /// The [`Outcome`](super::Outcome).
    pub outcome: String,
    /// Each user's `Vec<HandleState>` after the step.
    pub states: Vec<String>,
}

/// The kernel side of a lockstep run: a controller process in a private IPC
/// namespace and one process per simulated user. See the module docs.
#[derive(Debug)]
pub struct Sandbox {
    pid: libc::pid_t,
    to: File,
    from: File,
    users: Vec<Credentials>,
    timeout: Duration,
}

/// A pipe as (read end, write end), both close-on-exec.
fn pipe() -> Result<(File, File), String> {
    let mut fds = [0; 2];
    // SAFETY: `fds` is a valid two-element array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(format!("pipe2: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: both descriptors were just created and are owned by nobody else.
    unsafe {
        Ok((
            File::from(OwnedFd::from_raw_fd(fds[0])),
            File::from(OwnedFd::from_raw_fd(fds[1])),
        ))
    }
}

fn write_frame(f: &mut File, tag: u8, body: &[u8]) -> std::io::Result<()> {
    let len = u32::try_from(body.len() + 1).map_err(|_| std::io::ErrorKind::InvalidInput)?;
    let mut buf = Vec::with_capacity(body.len() + 5);
    buf.extend(len.to_le_bytes());
    buf.push(tag);
    buf.extend_from_slice(body);
    f.write_all(&buf)
}

/// Reads one frame; with `timeout`, fails if no frame starts in time.
fn read_frame(f: &mut File, timeout: Option<Duration>) -> std::io::Result<(u8, Vec<u8>)> {
    if let Some(t) = timeout {
        let mut p = libc::pollfd {
            fd: f.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = libc::c_int::try_from(t.as_millis()).unwrap_or(libc::c_int::MAX);
        // SAFETY: one valid pollfd.
        let n = unsafe { libc::poll(&mut p, 1, ms) };
        if n == 0 {
            return Err(std::io::ErrorKind::TimedOut.into());
        }
    }
    let mut len = [0u8; 4];
    f.read_exact(&mut len)?;
    let len = u32::from_le_bytes(len) as usize;
    if len == 0 {
        return Err(std::io::ErrorKind::InvalidData.into());
    }
    let mut body = vec![0u8; len];
    f.read_exact(&mut body)?;
    let tag = body.remove(0);
    Ok((tag, body))
}

fn put_bytes(out: &mut Vec<u8>, s: &[u8]) {
    out.extend((s.len() as u32).to_le_bytes());
    out.extend_from_slice(s);
}

fn get_str(inp: &mut &[u8]) -> Option<String> {
    let len = u32::get(inp)? as usize;
    if inp.len() < len {
        return None;
    }
    let (s, rest) = inp.split_at(len);
    *inp = rest;
    String::from_utf8(s.to_vec()).ok()
}

fn put_credentials(out: &mut Vec<u8>, c: &Credentials) {
    c.uid.put(out);
    c.gid.put(out);
    (c.groups.len() as u32).put(out);
    for g in &c.groups {
        g.put(out);
    }
    c.umask.put(out);
    c.capabilities.sys_resource.put(out);
    c.capabilities.dac_override.put(out);
    c.capabilities.fowner.put(out);
    out.extend(c.rlimit_msgqueue.to_le_bytes());
}

fn get_credentials(inp: &mut &[u8]) -> Option<Credentials> {
    let uid = u32::get(inp)?;
    let gid = u32::get(inp)?;
    let n = u32::get(inp)?;
    let groups = (0..n).map(|_| u32::get(inp)).collect::<Option<Vec<_>>>()?;
    let umask = u32::get(inp)?;
    let capabilities = Capabilities {
        sys_resource: bool::get(inp)?,
        dac_override: bool::get(inp)?,
        fowner: bool::get(inp)?,
    };
    let (rl, rest) = inp.split_first_chunk::<8>()?;
    *inp = rest;
    Some(Credentials {
        uid,
        gid,
        groups,
        umask,
        capabilities,
        rlimit_msgqueue: u64::from_le_bytes(*rl),
    })
}

impl Sandbox {
    /// A uid for sandbox user `k` (0..16) that nothing else on the machine
    /// is expected to use, distinct per process: per-user byte accounting is
    /// global, so a shared uid would make `QueueBytesLimit` outcomes depend on
    /// other processes.
    pub fn fresh_uid(k: u32) -> u32 {
        3_000_000 + (std::process::id() % 1_000_000) * 16 + (k % 16)
    }

    /// Forks the controller and one process per entry of `users`. Only
    /// the uid, gid, groups, umask, `rlimit_msgqueue` and the
    /// `dac_override`/`fowner`/`sys_resource` capabilities are used; a
    /// capability the machine cannot grant fails the spawn.
    ///
    /// # Errors
    ///
    /// A description of what failed (no `CAP_SYS_ADMIN` for `unshare`, no
    /// `CAP_SETUID`, ...).
    pub fn spawn(
        users: &[Credentials],
        names: &NamePool,
        horizon: Duration,
    ) -> Result<Sandbox, String> {
        if users.is_empty() {
            return Err("a sandbox needs at least one user".into());
        }
        let _serial = FORK.lock().unwrap_or_else(|p| p.into_inner());
        let (down_r, down_w) = pipe()?;
        let (up_r, up_w) = pipe()?;
        // SAFETY: the child only runs `controller` (plain syscalls, pipe I/O
        // and the driver) and leaves with `_exit`, never returning into the
        // caller's code.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err(format!("fork: {}", std::io::Error::last_os_error()));
        }
        if pid == 0 {
            drop(down_w);
            drop(up_r);
            let code = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                controller(down_r, up_w, users, names, horizon)
            })) {
                Ok(()) => 0,
                Err(_) => 3,
            };
            // SAFETY: leaving the forked child without running the parent's
            // destructors or atexit handlers.
            unsafe { libc::_exit(code) };
        }
        drop(down_r);
        drop(up_w);
        let mut sandbox = Sandbox {
            pid,
            to: down_w,
            from: up_r,
            users: Vec::new(),
            timeout: Duration::from_secs(60),
        };
        match read_frame(&mut sandbox.from, Some(sandbox.timeout)) {
            Ok((b'K', body)) => {
                let mut inp = &body[..];
                while !inp.is_empty() {
                    let c = get_credentials(&mut inp).ok_or("bad credentials from sandbox")?;
                    sandbox.users.push(c);
                }
                Ok(sandbox)
            }
            Ok((_, body)) => Err(String::from_utf8_lossy(&body).into_owned()),
            Err(e) => Err(format!("sandbox did not start: {e}")),
        }
    }

    /// The identities the user processes really have, as the twin must
    /// reproduce them (read back from `/proc/self/status` and `getrlimit`).
    pub fn users(&self) -> &[Credentials] {
        &self.users
    }

    /// Runs `ops` in a clean namespace with `sysctls`: every previous
    /// handle closed, every pool name unlinked. Returns one record per op.
    ///
    /// # Errors
    ///
    /// When the sandbox failed or stopped answering (60 s per scenario).
    pub fn run(&mut self, sysctls: &Sysctls, ops: &[Op]) -> Result<Vec<StepRecord>, String> {
        let mut body = Vec::new();
        sysctls.put(&mut body);
        for op in ops {
            op.put(&mut body);
        }
        let answer = write_frame(&mut self.to, b'X', &body)
            .and_then(|()| read_frame(&mut self.from, Some(self.timeout)));
        let (tag, body) = match answer {
            Ok(a) => a,
            Err(e) => {
                self.kill();
                return Err(format!("kernel sandbox failed: {e}"));
            }
        };
        if tag != b'K' {
            return Err(String::from_utf8_lossy(&body).into_owned());
        }
        let mut inp = &body[..];
        let mut records = Vec::with_capacity(ops.len());
        while !inp.is_empty() {
            let outcome = get_str(&mut inp).ok_or("bad record")?;
            let states = (0..self.users.len())
                .map(|_| get_str(&mut inp))
                .collect::<Option<Vec<_>>>()
                .ok_or("bad record")?;
            records.push(StepRecord { outcome, states });
        }
        Ok(records)
    }

    fn kill(&mut self) {
        if self.pid > 0 {
            // SAFETY: signalling and reaping our own child.
            unsafe {
                libc::kill(self.pid, libc::SIGKILL);
                libc::waitpid(self.pid, std::ptr::null_mut(), 0);
            }
            self.pid = 0;
        }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if self.pid <= 0 {
            return;
        }
        if write_frame(&mut self.to, b'Q', &[]).is_ok() {
            // The controller unlinks everything, reaps its users and exits.
            for _ in 0..2000 {
                let mut status = 0;
                // SAFETY: reaping our own child.
                if unsafe { libc::waitpid(self.pid, &mut status, libc::WNOHANG) } != 0 {
                    self.pid = 0;
                    return;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        self.kill();
    }
}

/// Dies with the parent; `false` if the parent is already gone.
fn die_with_parent(parent: libc::pid_t) -> bool {
    // SAFETY: plain prctl/getppid.
    unsafe {
        libc::prctl(
            libc::PR_SET_PDEATHSIG,
            libc::SIGKILL as libc::c_ulong,
            0,
            0,
            0,
        );
        libc::getppid() == parent
    }
}

struct UserProc {
    pid: libc::pid_t,
    to: File,
    from: File,
}

fn ask(u: &mut UserProc, tag: u8, body: &[u8]) -> Result<Vec<u8>, String> {
    write_frame(&mut u.to, tag, body).map_err(|e| e.to_string())?;
    match read_frame(&mut u.from, None) {
        Ok((b'K', body)) => Ok(body),
        Ok((_, body)) => Err(String::from_utf8_lossy(&body).into_owned()),
        Err(e) => Err(format!("user process: {e}")),
    }
}

fn write_sysctls(l: &crate::Limits) -> Result<(), String> {
    for (file, v) in [
        ("queues_max", l.queues_max),
        ("msg_max", l.msg_max as i64),
        ("msgsize_max", l.msgsize_max as i64),
        ("msg_default", l.msg_default as i64),
        ("msgsize_default", l.msgsize_default as i64),
    ] {
        std::fs::write(format!("/proc/sys/fs/mqueue/{file}"), v.to_string())
            .map_err(|e| format!("sysctl {file}={v}: {e}"))?;
    }
    Ok(())
}

/// Closes every descriptor above 2 except `keep`.
fn close_other_fds(keep: &[libc::c_int]) {
    let fds: Vec<libc::c_int> = std::fs::read_dir("/proc/self/fd")
        .map(|dir| {
            dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    for fd in fds {
        if fd > 2 && !keep.contains(&fd) {
            // SAFETY: closing a descriptor this process no longer uses; the
            // directory handle listed above is already closed (EBADF then).
            unsafe { libc::close(fd) };
        }
    }
}

/// The controller process: private namespace, user processes, scenarios.
fn controller(
    mut from: File,
    mut to: File,
    users: &[Credentials],
    names: &NamePool,
    horizon: Duration,
) {
    // No parent-death signal here: it would fire when the *thread* that
    // forked this process ends (a test's or a replay's thread), not the
    // process. The controller stops when the parent's end of the command
    // pipe closes instead, which happens when the `Sandbox` is dropped or
    // the parent process dies, however it dies.
    // Descriptors inherited from the test process (other sandboxes' pipes,
    // other tests' queues) must not stay open here: an open queue
    // descriptor keeps an unlinked queue, and its rlimit charge, alive.
    close_other_fds(&[from.as_raw_fd(), to.as_raw_fd()]);
    // SAFETY: unshare on this single-threaded process.
    if unsafe { libc::unshare(libc::CLONE_NEWIPC) } != 0 {
        let e = std::io::Error::last_os_error();
        let _ = write_frame(
            &mut to,
            b'E',
            format!("unshare(CLONE_NEWIPC): {e}").as_bytes(),
        );
        return;
    }
    // SAFETY: getpid has no preconditions.
    let me = unsafe { libc::getpid() };
    let mut procs = Vec::new();
    let mut hello = Vec::new();
    for creds in users {
        let started = spawn_user(me, creds, names, horizon).and_then(|mut p| {
            let mut body = match read_frame(&mut p.from, None) {
                Ok((b'K', body)) => body,
                Ok((_, body)) => return Err(String::from_utf8_lossy(&body).into_owned()),
                Err(e) => return Err(format!("user process: {e}")),
            };
            hello.append(&mut body);
            Ok(p)
        });
        match started {
            Ok(p) => procs.push(p),
            Err(e) => {
                let _ = write_frame(&mut to, b'E', e.as_bytes());
                return;
            }
        }
    }
    if write_frame(&mut to, b'K', &hello).is_err() {
        return;
    }
    let unlink_all = || {
        for n in names.valid() {
            let _ = Kernel.unlink(n);
        }
    };
    while let Ok((tag, body)) = read_frame(&mut from, None) {
        match tag {
            b'X' => {
                let reply = scenario(&mut procs, &body, &unlink_all);
                let sent = match reply {
                    Ok(r) => write_frame(&mut to, b'K', &r),
                    Err(e) => write_frame(&mut to, b'E', e.as_bytes()),
                };
                if sent.is_err() {
                    break;
                }
            }
            _ => break,
        }
    }
    for p in &mut procs {
        let _ = write_frame(&mut p.to, b'Q', &[]);
    }
    for p in &procs {
        // SAFETY: reaping our own children.
        unsafe { libc::waitpid(p.pid, std::ptr::null_mut(), 0) };
    }
    unlink_all();
}

/// One scenario in the controller: reset, then every op and the states.
fn scenario(procs: &mut [UserProc], body: &[u8], unlink_all: &dyn Fn()) -> Result<Vec<u8>, String> {
    let mut inp = body;
    let sysctls = Sysctls::get(&mut inp).ok_or("bad scenario")?;
    let mut sbody = Vec::new();
    sysctls.put(&mut sbody);
    for p in procs.iter_mut() {
        ask(p, b'C', &sbody)?;
    }
    unlink_all();
    write_sysctls(&sysctls.limits())?;
    let mut out = Vec::new();
    while !inp.is_empty() {
        let before = inp;
        let op = Op::get(&mut inp).ok_or("bad op")?;
        let raw = &before[..before.len() - inp.len()];
        let who = usize::from(op.who()) % procs.len();
        if let Op::SetSysctls { sysctls } = op {
            // Root writes the sysctls; every user's driver learns the limits.
            write_sysctls(&sysctls.limits())?;
            for (i, p) in procs.iter_mut().enumerate() {
                if i != who {
                    ask(p, b'S', raw)?;
                }
            }
        }
        put_bytes(&mut out, &ask(&mut procs[who], b'S', raw)?);
        for p in procs.iter_mut() {
            put_bytes(&mut out, &ask(p, b'A', &[])?);
        }
    }
    Ok(out)
}

fn spawn_user(
    controller: libc::pid_t,
    creds: &Credentials,
    names: &NamePool,
    horizon: Duration,
) -> Result<UserProc, String> {
    let (down_r, down_w) = pipe()?;
    let (up_r, up_w) = pipe()?;
    // SAFETY: the controller is single-threaded; the child leaves with `_exit`.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(format!("fork: {}", std::io::Error::last_os_error()));
    }
    if pid == 0 {
        drop(down_w);
        drop(up_r);
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            user(controller, down_r, up_w, creds, names, horizon)
        }));
        // SAFETY: leaving the forked child.
        unsafe { libc::_exit(0) };
    }
    Ok(UserProc {
        pid,
        to: down_w,
        from: up_r,
    })
}

/// Capability numbers.
const CAP_DAC_OVERRIDE: u32 = 1;
const CAP_FOWNER: u32 = 3;
const CAP_SYS_RESOURCE: u32 = 24;

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// Sets the effective and permitted capability sets to exactly `bits`.
fn set_caps(bits: u64) -> Result<(), String> {
    let mut head = CapHeader {
        version: 0x2008_0522, // _LINUX_CAPABILITY_VERSION_3
        pid: 0,
    };
    let lo = bits as u32;
    let hi = (bits >> 32) as u32;
    let data = [
        CapData {
            effective: lo,
            permitted: lo,
            inheritable: 0,
        },
        CapData {
            effective: hi,
            permitted: hi,
            inheritable: 0,
        },
    ];
    // SAFETY: capset with a valid v3 header and two data structs.
    let r = unsafe { libc::syscall(libc::SYS_capset, &mut head as *mut CapHeader, data.as_ptr()) };
    if r != 0 {
        return Err(format!(
            "capset({bits:#x}): {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

/// Turns this (root, single-threaded) process into `c`.
fn become_user(c: &Credentials) -> Result<(), String> {
    let mut caps = 0u64;
    for (on, bit) in [
        (c.capabilities.dac_override, CAP_DAC_OVERRIDE),
        (c.capabilities.fowner, CAP_FOWNER),
        (c.capabilities.sys_resource, CAP_SYS_RESOURCE),
    ] {
        if on {
            caps |= 1 << bit;
        }
    }
    let err = |what: &str| format!("{what}: {}", std::io::Error::last_os_error());
    // SAFETY (all calls below): plain syscalls on values we own, in a
    // single-threaded process.
    unsafe {
        let mut rl = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        libc::getrlimit(libc::RLIMIT_MSGQUEUE, &mut rl);
        rl.rlim_cur = c.rlimit_msgqueue.min(rl.rlim_max);
        if libc::setrlimit(libc::RLIMIT_MSGQUEUE, &rl) != 0 {
            return Err(err("setrlimit"));
        }
        libc::umask((c.umask & 0o777) as libc::mode_t);
        if libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0 {
            return Err(err("PR_SET_KEEPCAPS"));
        }
        let groups: Vec<libc::gid_t> = c.groups.clone();
        if libc::setgroups(groups.len(), groups.as_ptr()) != 0 {
            return Err(err("setgroups"));
        }
        if libc::setresgid(c.gid, c.gid, c.gid) != 0 {
            return Err(err("setresgid"));
        }
        if libc::setresuid(c.uid, c.uid, c.uid) != 0 {
            return Err(err("setresuid"));
        }
    }
    set_caps(caps)
}

/// The identity of this process as the kernel sees it.
fn observe() -> Credentials {
    // The same reading the kernel harness and users get (fs ids, groups,
    // umask, effective capabilities, the soft RLIMIT_MSGQUEUE).
    Credentials::current().unwrap_or_else(|_| Credentials {
        uid: u32::MAX,
        gid: u32::MAX,
        ..Credentials::default()
    })
}

/// A user process: one identity, one driver.
fn user(
    controller: libc::pid_t,
    mut from: File,
    mut to: File,
    creds: &Credentials,
    names: &NamePool,
    horizon: Duration,
) {
    if let Err(e) = become_user(creds) {
        let _ = write_frame(&mut to, b'E', e.as_bytes());
        return;
    }
    // After the identity change: the death signal is reset by setresuid.
    if !die_with_parent(controller) {
        return;
    }
    let mut hello = Vec::new();
    put_credentials(&mut hello, &observe());
    if write_frame(&mut to, b'K', &hello).is_err() {
        return;
    }
    let mut driver: Option<Driver<Kernel>> = None;
    while let Ok((tag, body)) = read_frame(&mut from, None) {
        let reply = match tag {
            b'C' => {
                drop(driver.take());
                match Sysctls::get(&mut &body[..]) {
                    Some(s) => {
                        driver =
                            Some(Driver::new(Kernel, names.clone(), s.limits()).horizon(horizon));
                        Ok(String::new())
                    }
                    None => Err("bad sysctls".to_string()),
                }
            }
            b'S' => match (Op::get(&mut &body[..]), driver.as_mut()) {
                (Some(op), Some(d)) => Ok(format!("{:?}", d.apply(&op))),
                _ => Err("bad op or no scenario".to_string()),
            },
            b'A' => match &driver {
                Some(d) => Ok(format!("{:?}", d.snapshot())),
                None => Ok("[]".to_string()),
            },
            _ => break,
        };
        let sent = match reply {
            Ok(s) => write_frame(&mut to, b'K', s.as_bytes()),
            Err(e) => write_frame(&mut to, b'E', e.as_bytes()),
        };
        if sent.is_err() {
            break;
        }
    }
}

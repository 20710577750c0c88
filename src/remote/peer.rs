//! Who is at the other end of a server connection: the client process's
//! identity, from the socket itself.

use std::os::unix::net::UnixStream;

use crate::twin::Credentials;

use super::protocol::Hello;

/// The identity the twin gives a connection.
pub(crate) struct Peer {
    pub(crate) credentials: Credentials,
    /// The process's real pid, when the socket tells it (Linux).
    pub(crate) pid: Option<u32>,
}

/// The client's identity.
///
/// - Linux: uid, gid and pid from `SO_PEERCRED` (what the kernel recorded at
///   `connect`); then groups, umask, capabilities and `RLIMIT_MSGQUEUE` from
///   `/proc/<pid>/status` and `/proc/<pid>/limits`, exactly as
///   [`Credentials::current`] reads them, provided that file still shows
///   the socket's uid and gid (otherwise, or when it cannot be read — a
///   client in another pid namespace — the fallback below).
/// - macOS and other Unix systems: uid and gid from `getpeereid`, then the
///   fallback.
/// - Fallback: [`Credentials::root`] for uid 0, else [`Credentials::user`],
///   with the umask and `RLIMIT_MSGQUEUE` the client declared in its
///   [`Hello`] (no supplementary groups, and for other users no
///   capabilities).
pub(crate) fn identify(stream: &UnixStream, hello: &Hello) -> std::io::Result<Peer> {
    #[cfg_attr(not(target_os = "linux"), allow(unused_variables))]
    let (uid, gid, pid) = socket_ids(stream)?;
    #[cfg(target_os = "linux")]
    if let Some(pid) = pid {
        if let Ok(c) = Credentials::of_process(pid) {
            if c.uid == uid && c.gid == gid {
                return Ok(Peer {
                    credentials: c,
                    pid: Some(pid),
                });
            }
        }
    }
    let base = if uid == 0 {
        Credentials::root()
    } else {
        Credentials::user(uid, gid)
    };
    Ok(Peer {
        credentials: Credentials {
            umask: hello.umask & 0o777,
            rlimit_msgqueue: hello.rlimit_msgqueue,
            ..base
        },
        pid,
    })
}

#[cfg(target_os = "linux")]
fn socket_ids(stream: &UnixStream) -> std::io::Result<(u32, u32, Option<u32>)> {
    use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};
    let c = getsockopt(stream, PeerCredentials).map_err(std::io::Error::from)?;
    let pid = u32::try_from(c.pid()).ok().filter(|&p| p > 0);
    Ok((c.uid(), c.gid(), pid))
}

#[cfg(not(target_os = "linux"))]
fn socket_ids(stream: &UnixStream) -> std::io::Result<(u32, u32, Option<u32>)> {
    let (uid, gid) = nix::unistd::getpeereid(stream).map_err(std::io::Error::from)?;
    Ok((uid.as_raw(), gid.as_raw(), None))
}

/// What a client declares about itself in its [`Hello`]: its umask and soft
/// `RLIMIT_MSGQUEUE` (Linux: from `/proc/self`; elsewhere `0o022` and the
/// Linux default, as the twin's default user).
pub(crate) fn own_declaration() -> (u32, u64) {
    match Credentials::current() {
        Ok(c) => (c.umask, c.rlimit_msgqueue),
        Err(_) => (0o022, crate::limits::DEFAULT_RLIMIT_MSGQUEUE),
    }
}

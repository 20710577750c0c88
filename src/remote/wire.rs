//! Writing frames to a socket without `SIGPIPE`.

use std::io;
use std::os::unix::net::UnixStream;

/// Writes all of `bytes`. On Linux with `MSG_NOSIGNAL`, so that a peer that
/// went away gives `EPIPE` instead of killing a process that does not
/// ignore `SIGPIPE` (a C program using the client, for one).
#[cfg(target_os = "linux")]
pub(crate) fn send_all(stream: &UnixStream, mut bytes: &[u8]) -> io::Result<()> {
    use nix::sys::socket::{send, MsgFlags};
    use std::os::fd::AsRawFd;
    while !bytes.is_empty() {
        match send(stream.as_raw_fd(), bytes, MsgFlags::MSG_NOSIGNAL) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => bytes = &bytes[n..],
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Writes all of `bytes` (the socket is `SO_NOSIGPIPE`-less here: a Rust
/// program ignores `SIGPIPE`; a C host should too).
#[cfg(not(target_os = "linux"))]
pub(crate) fn send_all(stream: &UnixStream, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write;
    (&*stream).write_all(bytes)
}

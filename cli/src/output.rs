//! Standard output, written so that every failure is seen.
//!
//! Two things hide a failed write from a Rust program. The runtime reopens
//! a standard descriptor that was closed at start (`mqtwin receive /q >&-`)
//! on `/dev/null`, for reading and writing, so the output vanishes; and
//! `std::io::stdout` reports a write to a closed descriptor (`EBADF`) as
//! success. A command that takes messages off a queue would then lose them.
//! So [`Stdout::open`] refuses a standard output that is `/dev/null` open
//! for reading and writing (what a closed one becomes; `>/dev/null` opens it
//! write-only and is fine), and writes go to a duplicate of descriptor 1,
//! where every error, `EBADF` included, is returned.

use std::io::{self, BufWriter, Write};

use crate::commands::Failure;

/// The process's standard output, buffered; flush it to see the errors.
#[derive(Debug)]
pub struct Stdout {
    #[cfg(unix)]
    inner: BufWriter<std::fs::File>,
    #[cfg(not(unix))]
    inner: BufWriter<io::Stdout>,
}

/// Why [`Stdout::open`] refused.
const CLOSED: &str = "standard output is closed, so nothing would be printed (and a received \
     message would be lost); nothing was done. To discard the output, redirect it to /dev/null \
     (>/dev/null)";

impl Stdout {
    /// Checks descriptor 1 and takes a duplicate of it.
    ///
    /// # Errors
    ///
    /// Standard output was closed when the process started (or is
    /// `/dev/null` open for reading and writing, which looks the same), or
    /// it cannot be duplicated.
    #[cfg(unix)]
    pub fn open() -> Result<Stdout, Failure> {
        use std::os::fd::AsFd;
        let fd = io::stdout()
            .as_fd()
            .try_clone_to_owned()
            .map_err(|e| match e.raw_os_error() {
                Some(9) => Failure::Other(CLOSED.into()), // EBADF
                _ => Failure::Other(format!("cannot use the standard output: {e}")),
            })?;
        let file = std::fs::File::from(fd);
        if is_reopened_closed_descriptor(&file) {
            return Err(Failure::Other(CLOSED.into()));
        }
        Ok(Stdout {
            inner: BufWriter::new(file),
        })
    }

    /// The standard output as it is (no closed-descriptor check off Unix).
    ///
    /// # Errors
    ///
    /// None off Unix.
    #[cfg(not(unix))]
    pub fn open() -> Result<Stdout, Failure> {
        Ok(Stdout {
            inner: BufWriter::new(io::stdout()),
        })
    }
}

/// Whether `file` is `/dev/null` open for reading and writing: what the
/// Rust runtime puts on a standard descriptor that was closed at start.
/// Reading `/dev/null` only ever returns end of file; on a write-only
/// descriptor (`>/dev/null`) the read fails with `EBADF`.
#[cfg(unix)]
fn is_reopened_closed_descriptor(file: &std::fs::File) -> bool {
    use std::io::Read;
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let (Ok(meta), Ok(null)) = (file.metadata(), std::fs::metadata("/dev/null")) else {
        return false;
    };
    meta.file_type().is_char_device() && meta.rdev() == null.rdev() && { file }
        .read(&mut [0u8; 1])
        .is_ok()
}

impl Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn dev_null_for_reading_and_writing_is_a_closed_stdout_write_only_is_not() {
        let rw = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/null")
            .unwrap();
        assert!(is_reopened_closed_descriptor(&rw));
        let wo = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/null")
            .unwrap();
        assert!(!is_reopened_closed_descriptor(&wo));
        let zero = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/zero")
            .unwrap();
        assert!(!is_reopened_closed_descriptor(&zero));
    }
}

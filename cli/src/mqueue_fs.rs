//! The mqueue filesystem (`/dev/mqueue` by convention): the kernel's view of
//! every queue of the IPC namespace. `ls` lists it; `stat` reads a queue's
//! file (`QSIZE:… NOTIFY:… SIGNO:… NOTIFY_PID:…`) and its mode and owner.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// How to mount the mqueue filesystem (as root, or in the pod's spec).
pub const MOUNT_COMMAND: &str = "mkdir -p /dev/mqueue && mount -t mqueue none /dev/mqueue";

/// What `ls` says when no mqueue filesystem is mounted.
pub const HOW_TO_MOUNT: &str = "the mqueue filesystem is not mounted, so the queues cannot be \
     listed; to mount it, as root: mkdir -p /dev/mqueue && mount -t mqueue none /dev/mqueue";

/// Where the mqueue filesystem of this process's mount namespace is
/// mounted: `/dev/mqueue` if it is mounted there, else the first mqueue
/// mount in `/proc/self/mounts`, else `None`.
pub fn mount_point() -> Option<PathBuf> {
    let mounts = fs::read_to_string("/proc/self/mounts").ok()?;
    let points: Vec<PathBuf> = mounts
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let point = fields.nth(1)?;
            (fields.next()? == "mqueue").then(|| PathBuf::from(unescape(point)))
        })
        .collect();
    let dev = Path::new("/dev/mqueue");
    points
        .iter()
        .find(|p| p.as_path() == dev)
        .or(points.first())
        .cloned()
}

/// `/proc/self/mounts` writes space, tab, newline and backslash as octal escapes.
fn unescape(s: &str) -> String {
    s.replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

/// A queue's file in the mqueue filesystem at `dir`.
fn path(dir: &Path, name: &str) -> PathBuf {
    dir.join(name.trim_start_matches('/'))
}

/// A queue's mode and owner, from `stat` of its file: known to everyone
/// who can list the directory, even without read permission on the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    /// Permission bits of the queue (`mode & 0o7777`).
    pub mode: u32,
    /// Owner uid.
    pub uid: u32,
    /// Owner gid.
    pub gid: u32,
}

impl Owner {
    /// `stat` of `dir/<name without its slash>`.
    ///
    /// # Errors
    ///
    /// The I/O error of `stat` (`NotFound`: unlinked meanwhile).
    pub fn read(dir: &Path, name: &str) -> std::io::Result<Owner> {
        let meta = fs::metadata(path(dir, name))?;
        Ok(Owner {
            mode: meta.mode() & 0o7777,
            uid: meta.uid(),
            gid: meta.gid(),
        })
    }
}

/// A queue's status line, the content of its file
/// (`QSIZE:… NOTIFY:… SIGNO:… NOTIFY_PID:…`): readable only with read
/// permission on the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    /// Bytes of queued payload (`QSIZE`).
    pub qsize: u64,
    /// The registered notification's `sigev_notify` (`NOTIFY`: 0 signal,
    /// 1 none, 2 thread); meaningful only when `notify_pid` is not 0.
    pub notify: u32,
    /// The notification signal (`SIGNO`).
    pub signo: u32,
    /// The process registered for notification, 0 for none (`NOTIFY_PID`).
    pub notify_pid: u32,
}

impl Status {
    /// Reads `dir/<name without its slash>`.
    ///
    /// # Errors
    ///
    /// The I/O error of the read (`PermissionDenied` without read
    /// permission on the queue), or `InvalidData` if the content is not the
    /// kernel's status line.
    pub fn read(dir: &Path, name: &str) -> std::io::Result<Status> {
        let content = fs::read_to_string(path(dir, name))?;
        let field = |key: &str| -> std::io::Result<u64> {
            content
                .split_whitespace()
                .find_map(|kv| kv.strip_prefix(key)?.strip_prefix(':')?.parse().ok())
                .ok_or_else(|| {
                    std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!("the status line has no {key} field: {content:?}"),
                    )
                })
        };
        let small = |v: u64| u32::try_from(v).unwrap_or(u32::MAX);
        Ok(Status {
            qsize: field("QSIZE")?,
            notify: small(field("NOTIFY")?),
            signo: small(field("SIGNO")?),
            notify_pid: small(field("NOTIFY_PID")?),
        })
    }

    /// The notification registration in words.
    pub fn notify_text(&self) -> String {
        if self.notify_pid == 0 {
            return "none".into();
        }
        let how = match self.notify {
            0 => format!("signal {}", self.signo),
            1 => "none (SIGEV_NONE)".into(),
            2 => "thread (SIGEV_THREAD)".into(),
            other => format!("sigev_notify {other}"),
        };
        format!("{how}, registered by pid {}", self.notify_pid)
    }
}

/// The effective uid of this process (from `/proc/self/status`), for
/// messages about permissions.
pub fn effective_uid() -> Option<u32> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find_map(|l| l.strip_prefix("Uid:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The queue names in the mqueue filesystem at `dir`, sorted, each with its
/// leading slash.
///
/// # Errors
///
/// The I/O error of reading the directory.
pub fn list(dir: &Path) -> std::io::Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        names.push(format!("/{}", entry.file_name().to_string_lossy()));
    }
    names.sort();
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_knows_its_uid() {
        let me = fs::metadata("/proc/self").unwrap().uid();
        assert_eq!(effective_uid(), Some(me));
    }

    #[test]
    fn mount_table_escapes_are_undone() {
        assert_eq!(unescape("/mnt/my\\040queues"), "/mnt/my queues");
        assert_eq!(unescape("/dev/mqueue"), "/dev/mqueue");
    }

    #[test]
    fn notification_in_words() {
        let mut info = Status {
            qsize: 0,
            notify: 0,
            signo: 10,
            notify_pid: 0,
        };
        assert_eq!(info.notify_text(), "none");
        info.notify_pid = 42;
        assert_eq!(info.notify_text(), "signal 10, registered by pid 42");
        info.notify = 2;
        assert_eq!(
            info.notify_text(),
            "thread (SIGEV_THREAD), registered by pid 42"
        );
    }
}

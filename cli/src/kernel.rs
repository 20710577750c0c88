//! The subcommands against the kernel's queues (Linux only): `ls` and
//! `stat` read the mqueue filesystem; the others go straight to
//! [`commands`] with [`mqtwin::posix::Kernel`].

use std::io::{ErrorKind, Write};
use std::path::Path;

use mqtwin::posix::Kernel;
use mqtwin::{Error, MessageQueue};

use crate::args::Command;
use crate::commands::{self, Failure};
use crate::mqueue_fs::{self, Owner, Status};
use crate::names::shown;
use crate::words::count;

/// Runs one subcommand against the kernel.
///
/// # Errors
///
/// What the subcommand reports.
pub fn run(command: Command, out: &mut dyn Write) -> Result<(), Failure> {
    let ns = Kernel;
    match command {
        Command::Ls => ls(out),
        Command::Stat { name } => stat(&name, out),
        Command::Create(args) => {
            commands::create(&ns, &args.name, args.create_options(), args.exclusive, out)
        }
        Command::Send(args) => {
            let msg = args.payload()?;
            let create = args.create_options()?;
            commands::send(
                &ns,
                &args.name,
                &msg,
                args.priority,
                args.timeout.map(|t| t.0),
                create,
                out,
            )
        }
        Command::Receive(args) => commands::receive(
            &ns,
            &args.name,
            args.timeout.map(|t| t.0),
            args.format.format(),
            out,
        ),
        Command::Watch(args) => {
            commands::watch(&ns, &args.name, args.count, args.format.format(), out)
        }
        Command::Rm { name } => commands::rm(&ns, &name, out),
    }
}

fn not_mounted() -> Failure {
    Failure::Other(mqueue_fs::HOW_TO_MOUNT.into())
}

/// "as uid 65534", or nothing if this process's uid is unknown.
fn as_me() -> String {
    mqueue_fs::effective_uid().map_or_else(String::new, |uid| format!(" as uid {uid}"))
}

/// `ls`: every queue of the mqueue filesystem. A queue this user may not
/// read is listed all the same (its mode and owner are visible to all),
/// with `?` for what only its content tells; a warning on stderr says why.
fn ls(out: &mut dyn Write) -> Result<(), Failure> {
    let dir = mqueue_fs::mount_point().ok_or_else(not_mounted)?;
    let names = mqueue_fs::list(&dir)
        .map_err(|e| Failure::Other(format!("cannot list {}: {e}", dir.display())))?;
    writeln!(
        out,
        "{:<32} {:>6} {:>6} {:>6} {:>10} {:>10}",
        "NAME", "MODE", "UID", "GID", "QSIZE", "NOTIFY_PID"
    )?;
    let mut denied = 0u64;
    for name in names {
        let unknown = || "?".to_owned();
        // A queue unlinked between the listing and the reads is skipped.
        let owner = match Owner::read(&dir, &name) {
            Err(e) if e.kind() == ErrorKind::NotFound => continue,
            other => other,
        };
        let status = match Status::read(&dir, &name) {
            Err(e) if e.kind() == ErrorKind::NotFound => continue,
            Err(e) if e.kind() == ErrorKind::PermissionDenied => {
                denied += 1;
                None
            }
            Err(e) => {
                eprintln!("mqtwin: cannot read {}: {e}", in_dir(&dir, &name));
                None
            }
            Ok(s) => Some(s),
        };
        if let Err(e) = &owner {
            eprintln!("mqtwin: cannot stat {}: {e}", in_dir(&dir, &name));
        }
        let owner = owner.ok();
        writeln!(
            out,
            "{:<32} {:>6} {:>6} {:>6} {:>10} {:>10}",
            name,
            owner.map_or_else(unknown, |o| format!("{:04o}", o.mode)),
            owner.map_or_else(unknown, |o| o.uid.to_string()),
            owner.map_or_else(unknown, |o| o.gid.to_string()),
            status.map_or_else(unknown, |s| s.qsize.to_string()),
            status.map_or_else(unknown, |s| s.notify_pid.to_string()),
        )?;
    }
    if denied > 0 {
        // The table first, so that the warning follows what it explains.
        out.flush()?;
        let (them, show) = if denied == 1 {
            ("it", "shows")
        } else {
            ("them", "show")
        };
        eprintln!(
            "mqtwin: permission denied reading {}{}: QSIZE and NOTIFY_PID {show} ? for {them}",
            count(denied, "queue"),
            as_me()
        );
    }
    Ok(())
}

/// `dir/<name>` in messages, the name shortened.
fn in_dir(dir: &Path, name: &str) -> String {
    format!("{}/{}", dir.display(), shown(name.trim_start_matches('/')))
}

/// `stat`: the attributes, and the mqueue filesystem's view of the queue.
fn stat(name: &str, out: &mut dyn Write) -> Result<(), Failure> {
    let mount = mqueue_fs::mount_point();
    let q = commands::open_any(&Kernel, name).map_err(|e| match e {
        Error::PermissionDenied { .. } => denied(name, e, mount.as_deref()),
        e => commands::cannot_open(name, e),
    })?;
    let attrs = q
        .attributes()
        .map_err(|e| Failure::Queue(format!("cannot read the attributes of {}", shown(name)), e))?;
    let extra = match &mount {
        None => vec![(
            "mqueue fs",
            format!(
                "not mounted: no QSIZE, NOTIFY, mode or owner; to mount it: {}",
                mqueue_fs::MOUNT_COMMAND
            ),
        )],
        Some(dir) => fs_lines(dir, name),
    };
    commands::print_stat(out, name, &attrs, &extra)?;
    Ok(())
}

/// `stat`'s lines from the mqueue filesystem at `dir`: the status line's
/// fields (`?` with the reason when this user may not read them), then the
/// mode and owner (which everyone can see).
fn fs_lines(dir: &Path, name: &str) -> Vec<(&'static str, String)> {
    let status = Status::read(dir, name);
    let mut lines = match &status {
        Ok(s) => vec![
            (
                "qsize",
                format!("{} queued (QSIZE)", count(s.qsize, "byte")),
            ),
            ("notify", s.notify_text()),
        ],
        Err(e) => {
            let why = if e.kind() == ErrorKind::PermissionDenied {
                format!("permission denied reading the queue{}", as_me())
            } else {
                e.to_string()
            };
            vec![
                (
                    "qsize",
                    format!("? (cannot read {}: {why})", in_dir(dir, name)),
                ),
                ("notify", "?".into()),
            ]
        }
    };
    match Owner::read(dir, name) {
        Ok(o) => {
            lines.push(("mode", format!("{:04o}", o.mode)));
            lines.push(("owner", format!("uid {}, gid {}", o.uid, o.gid)));
        }
        Err(e) => lines.push((
            "owner",
            format!("? (cannot stat {}: {e})", in_dir(dir, name)),
        )),
    }
    if let Ok(s) = status {
        lines.push((
            "raw",
            format!(
                "QSIZE:{} NOTIFY:{} SIGNO:{} NOTIFY_PID:{}",
                s.qsize, s.notify, s.signo, s.notify_pid
            ),
        ));
    }
    lines
}

/// `stat` on a queue this user may open neither way: the permission error,
/// with the queue's mode and owner when the mqueue filesystem shows them.
fn denied(name: &str, e: Error, mount: Option<&Path>) -> Failure {
    let why = match mount.map(|dir| Owner::read(dir, name)) {
        Some(Ok(o)) => format!(
            " (its mode is {:04o}, owner uid {}, gid {}; mqtwin runs{})",
            o.mode,
            o.uid,
            o.gid,
            as_me()
        ),
        _ => String::new(),
    };
    Failure::Other(format!("cannot open {}: {e}{why}", shown(name)))
}

//! The subcommands against the kernel's queues (Linux only): `ls` and
//! `stat` read the mqueue filesystem; the others go straight to
//! [`commands`] with [`mqtwin::posix::Kernel`].

use std::io::Write;

use mqtwin::posix::Kernel;
use mqtwin::MessageQueue;

use crate::commands::{self, Failure};
use crate::mqueue_fs::{self, FileInfo};
use crate::Command;

/// Runs one subcommand against the kernel.
///
/// # Errors
///
/// What the subcommand reports.
pub fn run(command: Command, out: &mut dyn Write) -> Result<(), Failure> {
    let ns = Kernel;
    match command {
        Command::Ls => ls(out),
        Command::Stat { name } => stat(&commands::queue_name(&name), out),
        Command::Send(args) => {
            let msg = args.payload()?;
            let create = args.create_options();
            commands::send(
                &ns,
                &commands::queue_name(&args.name),
                &msg,
                args.priority,
                args.timeout.map(|t| t.0),
                create,
                out,
            )
        }
        Command::Receive(args) => commands::receive(
            &ns,
            &commands::queue_name(&args.name),
            args.timeout.map(|t| t.0),
            args.format.format(),
            out,
        ),
        Command::Watch {
            name,
            count,
            format,
        } => commands::watch(
            &ns,
            &commands::queue_name(&name),
            count,
            format.format(),
            out,
        ),
        Command::Rm { name } => commands::rm(&ns, &commands::queue_name(&name), out),
    }
}

fn not_mounted() -> Failure {
    Failure::Other(mqueue_fs::HOW_TO_MOUNT.into())
}

fn ls(out: &mut dyn Write) -> Result<(), Failure> {
    let dir = mqueue_fs::mount_point().ok_or_else(not_mounted)?;
    let names = mqueue_fs::list(&dir)
        .map_err(|e| Failure::Other(format!("cannot list {}: {e}", dir.display())))?;
    writeln!(
        out,
        "{:<32} {:>6} {:>6} {:>6} {:>10} {:>10}",
        "NAME", "MODE", "UID", "GID", "QSIZE", "NOTIFY_PID"
    )?;
    for name in names {
        // A queue unlinked between the listing and the read is skipped.
        if let Ok(info) = FileInfo::read(&dir, &name) {
            writeln!(
                out,
                "{:<32} {:>6} {:>6} {:>6} {:>10} {:>10}",
                name,
                format!("{:04o}", info.mode),
                info.uid,
                info.gid,
                info.qsize,
                info.notify_pid
            )?;
        }
    }
    Ok(())
}

fn stat(name: &str, out: &mut dyn Write) -> Result<(), Failure> {
    let q = commands::open_any(&Kernel, name)?;
    let attrs = q
        .attributes()
        .map_err(|e| Failure::Queue(format!("cannot read the attributes of {name}"), e))?;
    let extra = match mqueue_fs::mount_point() {
        None => vec![(
            "mqueue fs",
            format!(
                "not mounted: no QSIZE, NOTIFY, mode or owner; to mount it: {}",
                mqueue_fs::MOUNT_COMMAND
            ),
        )],
        Some(dir) => match FileInfo::read(&dir, name) {
            Ok(info) => vec![
                ("qsize", format!("{} queued (QSIZE)", bytes(info.qsize))),
                ("notify", info.notify_text()),
                ("mode", format!("{:04o}", info.mode)),
                ("owner", format!("uid {}, gid {}", info.uid, info.gid)),
                (
                    "raw",
                    format!(
                        "QSIZE:{} NOTIFY:{} SIGNO:{} NOTIFY_PID:{}",
                        info.qsize, info.notify, info.signo, info.notify_pid
                    ),
                ),
            ],
            Err(e) => vec![(
                "mqueue fs",
                format!("cannot read {}: {e}", dir.join(&name[1..]).display()),
            )],
        },
    };
    commands::print_stat(out, name, &attrs, &extra)?;
    Ok(())
}

fn bytes(n: u64) -> String {
    if n == 1 {
        "1 byte".into()
    } else {
        format!("{n} bytes")
    }
}

//! Choosing the backend at run time, from the environment: [`from_env`]
//! (`MQTWIN=kernel|twin|remote:PATH`) and [`backend`].

use crate::dynamic::DynNamespace;
use crate::error::Error;

/// The environment variable [`from_env`] reads.
pub const BACKEND_ENV: &str = "MQTWIN";

/// The backend named by the environment variable `MQTWIN` (see
/// [`backend`] for the values). Unset or empty: the kernel on Linux (with
/// the `posix` feature), an in-process twin everywhere else.
///
/// A binary written against [`Namespace`](crate::Namespace) then picks its
/// backend without code changes: `MQTWIN=twin` for a dry run,
/// `MQTWIN=remote:/tmp/mq.sock` to share a twin with other processes over
/// `mqtwin serve` (on macOS too).
///
/// ```
/// # std::env::remove_var("MQTWIN");
/// let ns = mqtwin::from_env()?; // the kernel on Linux, a twin elsewhere
/// # drop(ns);
/// # Ok::<(), mqtwin::Error>(())
/// ```
///
/// # Errors
///
/// As [`backend`]; a value that is not UTF-8 is [`Error::Backend`] too.
pub fn from_env() -> Result<Box<dyn DynNamespace>, Error> {
    match std::env::var_os(BACKEND_ENV) {
        None => backend(""),
        Some(v) => match v.to_str() {
            Some(s) => backend(s),
            None => Err(Error::Backend {
                spec: v.to_string_lossy().into_owned(),
                problem: format!("{BACKEND_ENV} is not UTF-8"),
            }),
        },
    }
}

/// The backend `spec` names:
///
/// | `spec` | backend |
/// |---|---|
/// | `kernel` | [`posix::Kernel`](crate::posix::Kernel) (Linux, feature `posix`) |
/// | `twin` | a new in-process [`Twin`](crate::twin::Twin), acting as this process ([`Credentials::current`](crate::twin::Credentials::current) on Linux, the default user elsewhere) |
/// | `remote:PATH` | [`remote::Remote::connect`](crate#portability)`(PATH)` (feature `remote`, Unix) |
/// | empty | `kernel` on Linux with the `posix` feature, else `twin` |
///
/// ```
/// use mqtwin::{MessageQueue, Namespace, OpenOptions};
/// let ns = mqtwin::backend("twin")?;
/// let q = ns.open("/jobs", &OpenOptions::read_write().create())?;
/// q.send(b"x", 0)?;
/// assert!(matches!(mqtwin::backend("carrier-pigeon"), Err(mqtwin::Error::Backend { .. })));
/// # Ok::<(), mqtwin::Error>(())
/// ```
///
/// # Errors
///
/// [`Error::Backend`] for an unknown value, `kernel` where the kernel
/// backend is not built, `remote:` without a path or without the `remote`
/// feature; [`Error::Remote`] when the server at `PATH` cannot be reached.
pub fn backend(spec: &str) -> Result<Box<dyn DynNamespace>, Error> {
    let bad = |problem: &str| Error::Backend {
        spec: spec.to_owned(),
        problem: problem.to_owned(),
    };
    match spec.trim() {
        "" if cfg!(all(target_os = "linux", feature = "posix")) => backend("kernel"),
        "" | "twin" => {
            let me = crate::twin::Credentials::current().unwrap_or_default();
            Ok(Box::new(crate::twin::Twin::with_credentials(me)))
        }
        "kernel" => {
            #[cfg(all(target_os = "linux", feature = "posix"))]
            return Ok(Box::new(crate::posix::Kernel));
            #[cfg(not(all(target_os = "linux", feature = "posix")))]
            return Err(bad(if cfg!(target_os = "linux") {
                "this build has no kernel backend (the `posix` feature is off)"
            } else {
                "this OS has no POSIX message queues; use twin or remote:PATH"
            }));
        }
        s => match s.strip_prefix("remote:") {
            Some("") => Err(bad(
                "remote: needs the server's socket path, e.g. remote:/tmp/mq.sock",
            )),
            Some(path) => {
                #[cfg(all(unix, feature = "remote"))]
                return Ok(Box::new(crate::remote::Remote::connect(path)?));
                #[cfg(not(all(unix, feature = "remote")))]
                {
                    let _ = path;
                    Err(bad(
                        "this build has no remote backend (the `remote` feature, Unix only)",
                    ))
                }
            }
            None => Err(bad("expected kernel, twin or remote:PATH")),
        },
    }
}

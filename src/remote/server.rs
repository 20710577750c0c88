//! [`Server`]: one twin namespace for every process that connects to a
//! Unix-domain socket.

mod conn;
mod control;
mod pool;
mod threads;

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::twin::Twin;

use super::peer;
use super::protocol::{self, Hello, Incoming, Welcome, MAGIC, VERSION};
use super::wire;
use conn::Conn;
use pool::Pool;
use threads::Threads;

/// How long a new connection may take to send its [`Hello`], and how long
/// a write to a client may wait for it to read (then it is dropped).
const HANDSHAKE: Duration = Duration::from_secs(10);
const WRITE_LIMIT: Duration = Duration::from_secs(10);
/// How long stopping waits for the server's threads to end.
const STOP_LIMIT: Duration = Duration::from_secs(10);

/// A [`Server`]'s bounds.
///
/// ```
/// let config = mqtwin::remote::ServerConfig { max_connections: 16, ..Default::default() };
/// assert_eq!(config.max_calls_per_connection, 64);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// Connections served at once; one more is refused at its handshake
    /// (the client's `connect` fails with [`Error::Remote`](crate::Error::Remote)).
    pub max_connections: usize,
    /// Calls that may wait (send, receive, `wait_ready`) in flight on one
    /// connection; one more fails with [`Error::Remote`](crate::Error::Remote)
    /// (`EAGAIN`).
    pub max_calls_per_connection: usize,
    /// Worker threads for such calls, for all connections together; a call
    /// beyond fails likewise.
    pub max_workers: usize,
    /// The socket file's mode. The default `0o666` lets every local user
    /// connect, as every process can reach the kernel's queues; the twin
    /// then applies each queue's own mode bits to the real user.
    pub socket_mode: u32,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_connections: 256,
            max_calls_per_connection: 64,
            max_workers: 1024,
            socket_mode: 0o666,
        }
    }
}

/// A client's [`Control::Stop`](super::protocol::Control::Stop), for the
/// server's owner.
#[derive(Default)]
pub(crate) struct StopRequest {
    asked: Mutex<bool>,
    cv: std::sync::Condvar,
}

impl StopRequest {
    pub(crate) fn request(&self) {
        *self.asked.lock().unwrap_or_else(|p| p.into_inner()) = true;
        self.cv.notify_all();
    }
}

struct Shared {
    twin: Twin,
    threads: Arc<Threads>,
    config: ServerConfig,
    pool: Arc<Pool>,
    stopping: AtomicBool,
    live: Arc<AtomicUsize>,
    conns: Mutex<Vec<std::sync::Weak<Conn>>>,
    stop: Arc<StopRequest>,
    /// Twin pid → real pid of every connection whose real pid is known.
    pids: Arc<conn::Pids>,
}

/// The twin server: hosts one [`Twin`] for every process that connects to
/// its socket with [`Remote::connect`](super::Remote::connect).
///
/// Each connection is one simulated process of the twin, with the real
/// identity of the process at the other end (see the module docs). The
/// server serves in background threads from [`bind`](Server::bind) until
/// it is dropped (or [`shutdown`](Server::shutdown)), which closes every
/// connection and removes the socket file.
///
/// ```
/// use mqtwin::{MessageQueue, Namespace, OpenOptions, remote::{Remote, Server}, twin::Twin};
///
/// let path = std::env::temp_dir().join(format!("mqtwin-doc-{}.sock", std::process::id()));
/// let server = Server::bind(&path, Twin::builder().trace().build())?;
/// let client = Remote::connect(&path)?;
/// let q = client.open("/hello", &OpenOptions::read_write().create())?;
/// q.send(b"over the socket", 1)?;
/// assert_eq!(q.receive_vec()?, (b"over the socket".to_vec(), 1));
/// assert!(server.twin().trace_dump().contains("send(\"/hello\""));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Server {
    shared: Arc<Shared>,
    path: PathBuf,
    accept: Option<JoinHandle<()>>,
}

impl Server {
    /// Serves `twin` on a new socket at `path` with the default
    /// [`ServerConfig`].
    ///
    /// # Errors
    ///
    /// The socket cannot be created (`path` exists, or its directory is not
    /// writable), or no thread can be started.
    pub fn bind(path: impl AsRef<Path>, twin: Twin) -> io::Result<Server> {
        Server::with_config(path, twin, ServerConfig::default())
    }

    /// Serves `twin` on a new socket at `path`, within `config`.
    ///
    /// A twin built with [`TwinBuilder::deterministic`](crate::twin::TwinBuilder::deterministic)
    /// is refused: its calls must come from its own participants.
    ///
    /// # Errors
    ///
    /// As [`bind`](Server::bind); [`io::ErrorKind::InvalidInput`] for a
    /// deterministic twin.
    pub fn with_config(
        path: impl AsRef<Path>,
        twin: Twin,
        config: ServerConfig,
    ) -> io::Result<Server> {
        if twin.sim().is_some() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a deterministic twin cannot be served (its calls come from its Sim participants)",
            ));
        }
        let path = path.as_ref().to_path_buf();
        let listener = UnixListener::bind(&path)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(config.socket_mode))?;
        let threads = Arc::new(Threads::default());
        let shared = Arc::new(Shared {
            twin,
            pool: Pool::new(config.max_workers, Arc::clone(&threads)),
            threads,
            config,
            stopping: AtomicBool::new(false),
            live: Arc::new(AtomicUsize::new(0)),
            conns: Mutex::new(Vec::new()),
            pids: Arc::default(),
            stop: Arc::default(),
        });
        let s = Arc::clone(&shared);
        let accept = std::thread::Builder::new()
            .name("mqtwin-serve".into())
            .spawn(move || accept_loop(&s, &listener))
            .inspect_err(|_| {
                let _ = std::fs::remove_file(&path);
            })?;
        Ok(Server {
            shared,
            path,
            accept: Some(accept),
        })
    }

    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The hosted twin (the server's own caller in it): for limits, virtual
    /// time, `wait_blocked`, the trace.
    pub fn twin(&self) -> &Twin {
        &self.shared.twin
    }

    /// Connections being served now.
    pub fn connections(&self) -> usize {
        self.shared.live.load(Ordering::SeqCst)
    }

    /// Waits until a client asks the server to stop ([`Remote::request_stop`](super::Remote::request_stop),
    /// `mqtwin ctl stop`), at most `timeout`; returns whether one did. The
    /// server keeps serving: its owner decides (`mqtwin serve` writes its
    /// trace and exits).
    pub fn wait_for_stop_request(&self, timeout: Duration) -> bool {
        let stop = &self.shared.stop;
        let asked = stop.asked.lock().unwrap_or_else(|p| p.into_inner());
        let (asked, _) = stop
            .cv
            .wait_timeout_while(asked, timeout, |a| !*a)
            .unwrap_or_else(|p| p.into_inner());
        *asked
    }

    /// Stops serving: refuses new connections, ends every connection (as if
    /// each client process died), waits (at most 10 s) until every thread
    /// of the server has ended, and removes the socket file.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        if self.shared.stopping.swap(true, Ordering::SeqCst) {
            return;
        }
        // Wake the accept loop with a connection of our own.
        let _ = UnixStream::connect(&self.path);
        if let Some(a) = self.accept.take() {
            let _ = a.join();
        }
        let conns =
            std::mem::take(&mut *self.shared.conns.lock().unwrap_or_else(|p| p.into_inner()));
        for c in conns.iter().filter_map(std::sync::Weak::upgrade) {
            c.shut();
        }
        self.shared.pool.close();
        // Every connection ends (its blocked calls are interrupted), so its
        // threads and the workers end too: wait for them, within a bound.
        self.shared.threads.join_all(STOP_LIMIT);
        let _ = std::fs::remove_file(&self.path);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("path", &self.path)
            .field("connections", &self.connections())
            .finish()
    }
}

fn accept_loop(shared: &Arc<Shared>, listener: &UnixListener) {
    loop {
        let stream = match listener.accept() {
            Ok((s, _)) => s,
            // EMFILE and friends: wait a little instead of spinning.
            Err(_) => {
                if shared.stopping.load(Ordering::SeqCst) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        if shared.stopping.load(Ordering::SeqCst) {
            return;
        }
        if shared.live.fetch_add(1, Ordering::SeqCst) >= shared.config.max_connections {
            shared.live.fetch_sub(1, Ordering::SeqCst);
            let max = shared.config.max_connections;
            refuse(&stream, format!("the server is full ({max} connections)"));
            continue;
        }
        let s = Arc::clone(shared);
        // The connection's count is given back by `serve` or, once it
        // runs, by the connection's end (`Conn::finish`).
        let started = shared
            .threads
            .spawn("mqtwin-serve-conn", move || serve(&s, stream));
        if started.is_err() {
            shared.live.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

fn refuse(stream: &UnixStream, reason: String) {
    let _ = stream.set_write_timeout(Some(Duration::from_millis(100)));
    if let Ok(b) = protocol::encode(&Welcome::Refused {
        version: VERSION,
        reason,
    }) {
        let _ = wire::send_all(stream, &b);
    }
}

/// Serves one connection until it ends.
fn serve(shared: &Shared, stream: UnixStream) {
    match handshake(shared, stream) {
        Handshake::Serve(conn, reader) => conn.read_loop(reader),
        // No connection took over the count.
        Handshake::Refused => {
            shared.live.fetch_sub(1, Ordering::SeqCst);
        }
        // `Conn::finish` gave the count back.
        Handshake::Ended => {}
    }
}

/// How a handshake ended.
enum Handshake {
    /// Accepted: serve the connection with this read half.
    Serve(Arc<Conn>, conn::Reader),
    /// Refused, or the client went away, before a connection existed.
    Refused,
    /// The connection existed and has ended already.
    Ended,
}

fn handshake(shared: &Shared, mut stream: UnixStream) -> Handshake {
    use Handshake::Refused;
    let _ = stream.set_read_timeout(Some(HANDSHAKE));
    let _ = stream.set_write_timeout(Some(WRITE_LIMIT));
    let hello = match protocol::read_frame(&mut stream) {
        Ok(Incoming::Frame(body)) => match protocol::decode::<Hello>(&body) {
            Ok(h) if h.magic == MAGIC => h,
            // Not our protocol at all: close without a word.
            _ => return Refused,
        },
        _ => return Refused,
    };
    if hello.version != VERSION {
        refuse(
            &stream,
            format!(
                "protocol version {} is not this server's version {VERSION}",
                hello.version
            ),
        );
        return Refused;
    }
    let Ok(peer) = peer::identify(&stream, &hello) else {
        refuse(&stream, "cannot identify the connecting process".into());
        return Refused;
    };
    let Ok(reader) = stream.try_clone() else {
        refuse(&stream, "out of descriptors".into());
        return Refused;
    };
    let conn = Conn::new(
        &shared.twin,
        peer.credentials,
        peer.pid,
        Arc::clone(&shared.pids),
        stream,
        Arc::clone(&shared.pool),
        shared.config.max_calls_per_connection,
        Arc::clone(&shared.stop),
        Arc::clone(&shared.live),
    );
    {
        let mut conns = shared.conns.lock().unwrap_or_else(|p| p.into_inner());
        conns.retain(|w| w.strong_count() > 0);
        conns.push(Arc::downgrade(&conn));
    }
    let welcome = Welcome::Accepted {
        version: VERSION,
        pid: conn.twin.pid(),
        virtual_time: shared.twin.virtual_clock().is_some(),
    };
    let sent = protocol::encode(&welcome)
        .and_then(|b| wire::send_all(&reader, &b).map_err(|e| protocol::lost(&e)));
    if sent.is_err() || shared.stopping.load(Ordering::SeqCst) {
        conn.finish();
        return Handshake::Ended;
    }
    let _ = reader.set_read_timeout(None);
    Handshake::Serve(conn, std::io::BufReader::with_capacity(64 * 1024, reader))
}

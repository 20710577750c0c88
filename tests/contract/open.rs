//! `mq_open` flag handling and the kernel's check order (semantics.md §3.2):
//! missing queues, `create` as a plain open of an existing queue,
//! `create_new`, attribute validation and defaults, and the per-description
//! non-blocking flag.

use mqtwin::{AttributeLimit, Attributes, Error, MessageQueue, Namespace, OpenOptions};

use crate::harness::{fresh_uid, Child, Harness};

/// `dup` for both handle types (`try_clone` is inherent, not in the trait).
trait Dup: Sized {
    fn dup(&self) -> Result<Self, Error>;
}

impl Dup for mqtwin::twin::Queue {
    fn dup(&self) -> Result<Self, Error> {
        self.try_clone()
    }
}

#[cfg(all(target_os = "linux", feature = "posix"))]
impl Dup for mqtwin::posix::Queue {
    fn dup(&self) -> Result<Self, Error> {
        self.try_clone()
    }
}

#[cfg(all(target_os = "linux", feature = "posix", feature = "remote"))]
impl Dup for mqtwin::remote::RemoteQueue {
    fn dup(&self) -> Result<Self, Error> {
        self.try_clone()
    }
}

/// The queue's `(capacity, max_msg_len)` if the open succeeded.
fn shape<Q: MessageQueue>(r: Result<Q, Error>) -> Result<(usize, usize), Error> {
    let a = r?.attributes()?;
    Ok((a.capacity, a.max_msg_len))
}

/// Another, unprivileged user (uid = gid).
fn other_user() -> Child {
    let id = fresh_uid();
    Child {
        user: Some((id, id)),
        ..Child::default()
    }
}

/// Another user in a new IPC namespace with the default limits: the
/// compiled-in limits whatever the host's sysctls, and big queues are not
/// charged to the test process's uid (whose `RLIMIT_MSGQUEUE` budget all
/// kernel tests share). Bodies unlink what they create, so the charge is
/// gone when the child exits.
fn fresh_user_in_fresh_namespace() -> Child {
    Child {
        limits: Some(mqtwin::Limits::default()),
        ..other_user()
    }
}

fn small() -> OpenOptions {
    OpenOptions::read_write()
        .create_new()
        .capacity(3)
        .max_msg_len(100)
}

fn open_missing_without_create_is_not_found<H: Harness>(h: &H) {
    let name = h.name("missing");
    let not_found = Err(Error::NotFound { name: name.clone() });
    for opts in [
        OpenOptions::read_only(),
        OpenOptions::write_only(),
        OpenOptions::read_write(),
        OpenOptions::read_write().nonblocking(),
        // Attributes are only looked at when creating.
        OpenOptions::read_write().capacity(0).max_msg_len(0),
    ] {
        assert_eq!(h.ns().open(&name, &opts).map(drop), not_found, "{opts:?}");
    }
}

fn create_on_existing_queue_ignores_attributes<H: Harness>(h: &H) {
    let name = h.name("keep-attrs");
    let first = h.ns().open(&name, &small()).unwrap();
    first.send(b"kept", 4).unwrap();
    for (capacity, max_msg_len) in [(0, 0), (5, 50), (11, 8193), (usize::MAX, 1)] {
        let again = h.ns().open(
            &name,
            &OpenOptions::read_write()
                .create()
                .capacity(capacity)
                .max_msg_len(max_msg_len),
        );
        assert_eq!(
            again.and_then(|q| q.attributes()),
            Ok(Attributes {
                capacity: 3,
                max_msg_len: 100,
                current_messages: 1,
                nonblocking: false,
            }),
            "create with {{{capacity},{max_msg_len}}}"
        );
    }
}

fn create_on_existing_queue_ignores_mode<H: Harness>(h: &H) {
    let name = h.name("keep-mode");
    // Mode 0600 whatever the umask: nothing for other users.
    let _q = h.ns().open(&name, &small().mode(0o600)).unwrap();
    let reopened = h
        .ns()
        .open(&name, &OpenOptions::read_write().create().mode(0o666));
    assert_eq!(reopened.map(drop), Ok(()));
    let other = other_user();
    let out = h.in_child(&other, |ns| {
        format!("{:?}", ns.open(&name, &OpenOptions::read_only()).map(drop))
    });
    let denied: Result<(), Error> = Err(Error::PermissionDenied { name: name.clone() });
    assert_eq!(out, format!("{denied:?}"));
}

fn create_new_on_existing_queue_is_already_exists<H: Harness>(h: &H) {
    let name = h.name("exists");
    let _q = h.ns().open(&name, &small()).unwrap();
    let exists = Err(Error::AlreadyExists { name: name.clone() });
    for opts in [
        small(),
        OpenOptions::read_only().create_new(),
        OpenOptions::write_only().create_new().nonblocking(),
    ] {
        assert_eq!(h.ns().open(&name, &opts).map(drop), exists, "{opts:?}");
    }
}

fn already_exists_wins_over_invalid_attributes<H: Harness>(h: &H) {
    let name = h.name("exists-bad-attrs");
    let _q = h.ns().open(&name, &small()).unwrap();
    let exists = Err(Error::AlreadyExists { name: name.clone() });
    for (capacity, max_msg_len) in [(0, 0), (0, 16), (11, 8193), (usize::MAX, usize::MAX)] {
        let opts = OpenOptions::read_write()
            .create_new()
            .capacity(capacity)
            .max_msg_len(max_msg_len);
        assert_eq!(
            h.ns().open(&name, &opts).map(drop),
            exists,
            "{{{capacity},{max_msg_len}}}"
        );
    }
}

fn already_exists_wins_over_permission_denied<H: Harness>(h: &H) {
    let name = h.name("exists-denied");
    let _q = h.ns().open(&name, &small().mode(0o600)).unwrap();
    let other = other_user();
    let out = h.in_child(&other, |ns| {
        let plain = ns.open(&name, &OpenOptions::read_write()).map(drop);
        let exclusive = ns
            .open(&name, &OpenOptions::read_write().create_new())
            .map(drop);
        format!("{:?}", (plain, exclusive))
    });
    let expected: (Result<(), Error>, Result<(), Error>) = (
        Err(Error::PermissionDenied { name: name.clone() }),
        Err(Error::AlreadyExists { name: name.clone() }),
    );
    assert_eq!(out, format!("{expected:?}"));
}

fn invalid_attributes_are_rejected_with_the_requested_values<H: Harness>(h: &H) {
    let name = h.name("bad-attrs");
    for (capacity, max_msg_len, limit) in [
        (0, 16, AttributeLimit::ZeroCapacity),
        (1, 0, AttributeLimit::ZeroMaxMsgLen),
        (0, 0, AttributeLimit::ZeroCapacity),
        (11, 8192, AttributeLimit::MsgMax(10)),
        (10, 8193, AttributeLimit::MsgsizeMax(8192)),
        (65_536, 1, AttributeLimit::MsgMax(10)),
        (1, 16 * 1024 * 1024, AttributeLimit::MsgsizeMax(8192)),
        ((1 << 32) + 1, 16, AttributeLimit::MsgMax(10)),
        (usize::MAX, usize::MAX, AttributeLimit::MsgMax(10)),
    ] {
        let opts = OpenOptions::read_write()
            .create()
            .capacity(capacity)
            .max_msg_len(max_msg_len);
        assert_eq!(
            h.ns().open(&name, &opts).map(drop),
            Err(Error::InvalidAttributes {
                capacity,
                max_msg_len,
                limit
            }),
            "{{{capacity},{max_msg_len}}}"
        );
    }
    // Nothing was created.
    assert_eq!(
        h.ns().open(&name, &OpenOptions::read_write()).map(drop),
        Err(Error::NotFound { name: name.clone() })
    );
}

fn attributes_up_to_the_limits_are_accepted<H: Harness>(h: &H) {
    let cases = [(10, 8192), (1, 128), (1, 1), (10, 1), (1, 8192)];
    let out = h.in_child(&fresh_user_in_fresh_namespace(), |ns| {
        let got: Vec<_> = cases
            .iter()
            .map(|&(capacity, max_msg_len)| {
                let name = H::child_name("edge");
                let opts = OpenOptions::read_write()
                    .create_new()
                    .capacity(capacity)
                    .max_msg_len(max_msg_len);
                let got = shape(ns.open(&name, &opts));
                let _ = ns.unlink(&name);
                got
            })
            .collect();
        format!("{got:?}")
    });
    let expected: Vec<Result<(usize, usize), Error>> = cases.iter().map(|&c| Ok(c)).collect();
    assert_eq!(out, format!("{expected:?}"));
}

fn no_attributes_give_the_defaults<H: Harness>(h: &H) {
    let out = h.in_child(&fresh_user_in_fresh_namespace(), |ns| {
        let name = H::child_name("defaults");
        let got = ns
            .open(&name, &OpenOptions::read_write().create_new())
            .and_then(|q| q.attributes());
        let _ = ns.unlink(&name);
        format!("{got:?}")
    });
    let expected: Result<Attributes, Error> = Ok(Attributes {
        capacity: 10,
        max_msg_len: 8192,
        current_messages: 0,
        nonblocking: false,
    });
    assert_eq!(out, format!("{expected:?}"));
}

fn one_invalid_attribute_alone_reports_the_default_for_the_other<H: Harness>(h: &H) {
    let name = h.name("only-bad");
    for (opts, capacity, max_msg_len, limit) in [
        (
            OpenOptions::read_write().create().capacity(11),
            11,
            8192,
            AttributeLimit::MsgMax(10),
        ),
        (
            OpenOptions::read_write().create().capacity(0),
            0,
            8192,
            AttributeLimit::ZeroCapacity,
        ),
        (
            OpenOptions::read_write().create().max_msg_len(8193),
            10,
            8193,
            AttributeLimit::MsgsizeMax(8192),
        ),
        (
            OpenOptions::read_write().create().max_msg_len(0),
            10,
            0,
            AttributeLimit::ZeroMaxMsgLen,
        ),
    ] {
        assert_eq!(
            h.ns().open(&name, &opts).map(drop),
            Err(Error::InvalidAttributes {
                capacity,
                max_msg_len,
                limit
            }),
            "{opts:?}"
        );
    }
}

fn nonblocking_open_shows_in_attributes<H: Harness>(h: &H) {
    let name = h.name("nb");
    let nb = h.ns().open(&name, &small().nonblocking()).unwrap();
    assert_eq!(
        nb.attributes(),
        Ok(Attributes {
            capacity: 3,
            max_msg_len: 100,
            current_messages: 0,
            nonblocking: true,
        })
    );
    let mut buf = [0u8; 100];
    assert_eq!(nb.receive(&mut buf), Err(Error::WouldBlock));
    let blocking = h.ns().open(&name, &OpenOptions::read_only()).unwrap();
    assert_eq!(blocking.attributes().map(|a| a.nonblocking), Ok(false));
}

fn separately_opened_handles_have_their_own_nonblocking_flag<H: Harness>(h: &H) {
    let name = h.name("own-flag");
    let a = h.ns().open(&name, &small()).unwrap();
    let b = h.ns().open(&name, &OpenOptions::read_write()).unwrap();
    assert_eq!(a.set_nonblocking(true), Ok(false));
    assert_eq!(a.attributes().map(|x| x.nonblocking), Ok(true));
    assert_eq!(b.attributes().map(|x| x.nonblocking), Ok(false));
    let mut buf = [0u8; 100];
    assert_eq!(a.receive(&mut buf), Err(Error::WouldBlock));
    // `b` still blocks: it waits for its deadline instead of failing at once.
    assert_eq!(
        b.receive_timeout(&mut buf, std::time::Duration::from_millis(5)),
        Err(Error::TimedOut)
    );
    assert_eq!(b.set_nonblocking(true), Ok(false));
    assert_eq!(a.set_nonblocking(false), Ok(true));
    assert_eq!(a.attributes().map(|x| x.nonblocking), Ok(false));
    assert_eq!(b.attributes().map(|x| x.nonblocking), Ok(true));
}

fn clones_share_the_nonblocking_flag<H: Harness>(h: &H)
where
    H::Q: Dup,
{
    let q = h.ns().open(&h.name("shared-flag"), &small()).unwrap();
    let clone = q.dup().unwrap();
    assert_eq!(clone.set_nonblocking(true), Ok(false));
    assert_eq!(q.attributes().map(|a| a.nonblocking), Ok(true));
    let mut buf = [0u8; 100];
    assert_eq!(q.receive(&mut buf), Err(Error::WouldBlock));
    assert_eq!(q.set_nonblocking(false), Ok(true));
    assert_eq!(clone.attributes().map(|a| a.nonblocking), Ok(false));
    // The clone is the same queue: what one sends the other receives.
    assert_eq!(clone.send(b"via clone", 4), Ok(()));
    assert_eq!(
        q.try_receive(&mut buf).map(|r| (r.len, r.priority)),
        Ok((9, 4))
    );
}

crate::instantiate!(
    open_missing_without_create_is_not_found,
    create_on_existing_queue_ignores_attributes,
    create_on_existing_queue_ignores_mode,
    create_new_on_existing_queue_is_already_exists,
    already_exists_wins_over_invalid_attributes,
    already_exists_wins_over_permission_denied,
    invalid_attributes_are_rejected_with_the_requested_values,
    attributes_up_to_the_limits_are_accepted,
    no_attributes_give_the_defaults,
    one_invalid_attribute_alone_reports_the_default_for_the_other,
    nonblocking_open_shows_in_attributes,
    separately_opened_handles_have_their_own_nonblocking_flag,
    clones_share_the_nonblocking_flag,
);

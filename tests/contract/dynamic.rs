//! Generic and run-time backend use: `TryClone` from generic code, a
//! namespace shared across threads, and `Box<dyn DynNamespace>` with boxed
//! handles.

use std::time::Duration;

use mqtwin::{DynNamespace, Error, MessageQueue, Namespace, OpenOptions, TryClone};

use crate::harness::Harness;

const LEN: usize = 16;
const GUARD: Duration = Duration::from_secs(10);

fn small() -> OpenOptions {
    OpenOptions::read_write()
        .create()
        .capacity(4)
        .max_msg_len(LEN)
}

/// Only the `Namespace` bound: the namespace is shared with a scoped thread,
/// a dup of a handle moves into a `'static` thread, and the dup shares the
/// description's non-blocking flag.
fn generic_round_trip<N: Namespace>(ns: &N, name: &str) -> Result<(), Error> {
    let q = ns.open(name, &small())?;
    let dup = q.try_clone()?;
    let echo = std::thread::spawn(move || {
        let got = dup.receive_vec_timeout(GUARD)?;
        dup.send(&got.0, got.1 + 1)
    });
    std::thread::scope(|s| {
        s.spawn(|| ns.open(name, &OpenOptions::write_only())?.send(b"hi", 1))
            .join()
    })
    .expect("sender thread")?;
    echo.join().expect("echo thread")?;
    assert_eq!(q.receive_vec_timeout(GUARD), Ok((b"hi".to_vec(), 2)));
    let dup = q.try_clone()?;
    assert_eq!(dup.set_nonblocking(true), Ok(false));
    assert_eq!(q.attributes().map(|a| a.nonblocking), Ok(true));
    Ok(())
}

fn try_clone_and_threads_from_generic_code<H: Harness>(h: &H) {
    assert_eq!(generic_round_trip(h.ns(), &h.name("generic")), Ok(()));
}

/// The same generic code runs on `Box<dyn DynNamespace>`; its handles are
/// `Box<dyn MessageQueue>`, which dup (`try_clone_box`, `TryClone`).
fn a_boxed_namespace_behaves_as_its_backend<H: Harness>(h: &H) {
    let ns: Box<dyn DynNamespace + '_> = Box::new(h.ns());
    let name = h.name("boxed");
    assert_eq!(generic_round_trip(&ns, &name), Ok(()));
    let q: Box<dyn MessageQueue> = ns.open(&name, &OpenOptions::read_write()).unwrap();
    let a = q.try_clone_box().unwrap();
    let b = TryClone::try_clone(&q).unwrap();
    assert_eq!(a.send(b"via a", 3), Ok(()));
    assert_eq!(b.try_receive_vec(), Ok((b"via a".to_vec(), 3)));
    // The flag set through the dup in `generic_round_trip` belonged to
    // another description; this one is blocking until a dup changes it.
    assert_eq!(q.set_nonblocking(true), Ok(false));
    assert_eq!(b.attributes().map(|x| x.nonblocking), Ok(true));
    assert!(ns.now() <= ns.deadline_after(Duration::from_secs(1)));
    assert_eq!(
        ns.open(&name, &OpenOptions::read_write().create_new())
            .map(drop),
        Err(Error::AlreadyExists { name: name.clone() })
    );
    assert_eq!(ns.unlink(&name), Ok(()));
    assert_eq!(
        ns.unlink(&name),
        Err(Error::NotFound { name: name.clone() })
    );
}

crate::instantiate!(
    try_clone_and_threads_from_generic_code,
    a_boxed_namespace_behaves_as_its_backend,
);

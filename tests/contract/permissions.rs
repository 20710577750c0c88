//! Mode bits, umask, and who may unlink (semantics.md §3.2 steps 6.9, 6.10,
//! 7.3 and §5): the test process (root with `CAP_DAC_OVERRIDE` and
//! `CAP_FOWNER`) creates queues, and children that dropped to another uid
//! open or unlink them.

use mqtwin::{Error, MessageQueue, Namespace, OpenOptions};

use crate::harness::{Child, Harness, Need};

type Outcome = Result<(), Error>;

/// The unprivileged user the children of this module run as. Some of its
/// queues live in the test process's namespace until the harness unlinks
/// them, so it is deliberately outside the range of `fresh_uid()`, whose
/// users must start with nothing charged to their `RLIMIT_MSGQUEUE`.
const OTHER: u32 = 63_001;
/// A user that is not the queue's owner but shares its group.
const MEMBER: u32 = 63_002;

/// An unprivileged user (uid = gid) that owns none of the test process's
/// queues.
fn other_user() -> Child {
    Child {
        user: Some((OTHER, OTHER)),
        ..Child::default()
    }
}

/// The same user with umask 0, so created modes are exact.
fn with_umask_0(mut child: Child) -> Child {
    child.umask = Some(0);
    child
}

fn small(mode: u32) -> OpenOptions {
    OpenOptions::read_write()
        .create_new()
        .capacity(1)
        .max_msg_len(16)
        .mode(mode)
}

/// Creates `name` with exactly `mode` (a child of the test process's
/// identity with umask 0), leaving it closed.
pub(crate) fn create_with_exact_mode<H: Harness>(h: &H, name: &str, mode: u32) {
    let spec = Child {
        umask: Some(0),
        ..Child::default()
    };
    let out = h.in_child(&spec, |ns| {
        format!("{:?}", ns.open(name, &small(mode)).map(drop))
    });
    assert_eq!(out, format!("{:?}", Outcome::Ok(())), "create {name}");
}

/// The outcome of opening `name` read-only, write-only and read-write.
fn access_outcomes<N: Namespace>(ns: &N, name: &str) -> String {
    let try_open = |opts: OpenOptions| ns.open(name, &opts).map(drop);
    format!(
        "{:?}",
        (
            try_open(OpenOptions::read_only()),
            try_open(OpenOptions::write_only()),
            try_open(OpenOptions::read_write()),
        )
    )
}

fn expect(name: &str, read: bool, write: bool, read_write: bool) -> String {
    let r = |ok: bool| -> Outcome {
        if ok {
            Ok(())
        } else {
            Err(Error::PermissionDenied { name: name.into() })
        }
    };
    format!("{:?}", (r(read), r(write), r(read_write)))
}

fn umask_is_applied_to_the_created_mode<H: Harness>(h: &H) {
    // Root creates both queues with mode 0666; only the umask differs.
    let strict = h.name("umask077");
    let usual = h.name("umask022");
    for (name, umask) in [(&strict, 0o077), (&usual, 0o022)] {
        let spec = Child {
            umask: Some(umask),
            ..Child::default()
        };
        let out = h.in_child(&spec, |ns| {
            format!("{:?}", ns.open(name, &small(0o666)).map(drop))
        });
        assert_eq!(out, format!("{:?}", Outcome::Ok(())));
    }
    let other = other_user();
    // 0666 & ~077 = 0600: nothing for others.
    assert_eq!(
        h.in_child(&other, |ns| access_outcomes(ns, &strict)),
        expect(&strict, false, false, false)
    );
    // 0666 & ~022 = 0644: others may read only.
    assert_eq!(
        h.in_child(&other, |ns| access_outcomes(ns, &usual)),
        expect(&usual, true, false, false)
    );
}

fn other_users_get_the_other_bits<H: Harness>(h: &H) {
    let other = other_user();
    for (mode, read, write, read_write) in [
        (0o600, false, false, false),
        (0o644, true, false, false),
        (0o622, false, true, false),
        (0o606, true, true, true),
        (0o060, false, false, false),
    ] {
        let name = h.name(&format!("other{mode:o}"));
        create_with_exact_mode(h, &name, mode);
        assert_eq!(
            h.in_child(&other, |ns| access_outcomes(ns, &name)),
            expect(&name, read, write, read_write),
            "mode {mode:o}"
        );
    }
}

fn a_member_of_the_queue_group_gets_the_group_bits<H: Harness>(h: &H) {
    // The queue's group is the creator's (the test process's) gid.
    let group = h.credentials().gid;
    let member = Child {
        user: Some((MEMBER, group)),
        ..Child::default()
    };
    for (mode, read, write, read_write) in [
        (0o060, true, true, true),
        (0o040, true, false, false),
        (0o020, false, true, false),
        (0o606, false, false, false),
    ] {
        let name = h.name(&format!("group{mode:o}"));
        create_with_exact_mode(h, &name, mode);
        assert_eq!(
            h.in_child(&member, |ns| access_outcomes(ns, &name)),
            expect(&name, read, write, read_write),
            "mode {mode:o}"
        );
    }
}

fn a_non_root_owner_gets_only_the_owner_bits<H: Harness>(h: &H) {
    // Owner may read; group and others may do everything: the owner class
    // decides alone.
    let name = h.name("owner");
    let out = h.in_child(&with_umask_0(other_user()), |ns| {
        let created = ns.open(&name, &small(0o466)).map(drop);
        format!("{:?} {}", created, access_outcomes(ns, &name))
    });
    assert_eq!(
        out,
        format!(
            "{:?} {}",
            Outcome::Ok(()),
            expect(&name, true, false, false)
        )
    );
}

fn create_without_exclusive_on_a_forbidden_queue_is_denied<H: Harness>(h: &H) {
    let name = h.name("create-denied");
    create_with_exact_mode(h, &name, 0o600);
    let out = h.in_child(&other_user(), |ns| {
        format!(
            "{:?}",
            ns.open(&name, &OpenOptions::read_only().create().mode(0o666))
                .map(drop)
        )
    });
    let denied: Outcome = Err(Error::PermissionDenied { name: name.clone() });
    assert_eq!(out, format!("{denied:?}"));
}

fn the_creator_of_a_mode_0000_queue_keeps_its_handle_but_cannot_reopen<H: Harness>(h: &H) {
    let name = h.name("mode0");
    let out = h.in_child(&with_umask_0(other_user()), |ns| {
        let run = || -> Result<String, Error> {
            let q = ns.open(&name, &small(0o000))?;
            q.send(b"mine", 3)?;
            let mut buf = [0u8; 16];
            let got = q.receive(&mut buf)?;
            let reopen = ns.open(&name, &OpenOptions::read_only()).map(drop);
            Ok(format!("{:?} {:?}", (got.len, got.priority), reopen))
        };
        format!("{:?}", run())
    });
    let denied: Outcome = Err(Error::PermissionDenied { name: name.clone() });
    let expected: Result<String, Error> = Ok(format!("{:?} {denied:?}", (4, 3)));
    assert_eq!(out, format!("{expected:?}"));
}

fn dac_override_opens_any_mode<H: Harness>(h: &H) {
    h.require(Need::DacOverride);
    let name = h.name("root-opens");
    let out = h.in_child(&with_umask_0(other_user()), |ns| {
        format!("{:?}", ns.open(&name, &small(0o000)).map(drop))
    });
    assert_eq!(out, format!("{:?}", Outcome::Ok(())));
    // The test process has CAP_DAC_OVERRIDE: mode 0000 does not stop it.
    assert_eq!(
        access_outcomes(h.ns(), &name),
        expect(&name, true, true, true)
    );
}

fn a_non_owner_cannot_unlink_whatever_the_mode<H: Harness>(h: &H) {
    let name = h.name("not-yours");
    create_with_exact_mode(h, &name, 0o666);
    let out = h.in_child(&other_user(), |ns| {
        let unlink = ns.unlink(&name);
        // Still there, and still usable by the same user.
        let open = ns.open(&name, &OpenOptions::read_write()).map(drop);
        format!("{:?}", (unlink, open))
    });
    let expected: (Outcome, Outcome) =
        (Err(Error::PermissionDenied { name: name.clone() }), Ok(()));
    assert_eq!(out, format!("{expected:?}"));
}

fn an_owner_can_unlink_its_own_mode_0000_queue<H: Harness>(h: &H) {
    let name = h.name("own-unlink");
    let out = h.in_child(&with_umask_0(other_user()), |ns| {
        let created = ns.open(&name, &small(0o000)).map(drop);
        let unlink = ns.unlink(&name);
        format!("{:?}", (created, unlink))
    });
    let expected: (Outcome, Outcome) = (Ok(()), Ok(()));
    assert_eq!(out, format!("{expected:?}"));
    assert_eq!(
        h.ns().open(&name, &OpenOptions::read_write()).map(drop),
        Err(Error::NotFound { name: name.clone() })
    );
}

fn root_with_cap_fowner_can_unlink_any_queue<H: Harness>(h: &H) {
    h.require(Need::Fowner);
    let name = h.name("root-unlinks");
    let out = h.in_child(&with_umask_0(other_user()), |ns| {
        format!("{:?}", ns.open(&name, &small(0o000)).map(drop))
    });
    assert_eq!(out, format!("{:?}", Outcome::Ok(())));
    assert_eq!(h.ns().unlink(&name), Ok(()));
    assert_eq!(
        h.ns().open(&name, &OpenOptions::read_write()).map(drop),
        Err(Error::NotFound { name: name.clone() })
    );
}

crate::instantiate!(
    umask_is_applied_to_the_created_mode,
    other_users_get_the_other_bits,
    a_member_of_the_queue_group_gets_the_group_bits,
    a_non_root_owner_gets_only_the_owner_bits,
    create_without_exclusive_on_a_forbidden_queue_is_denied,
    the_creator_of_a_mode_0000_queue_keeps_its_handle_but_cannot_reopen,
    dac_override_opens_any_mode,
    a_non_owner_cannot_unlink_whatever_the_mode,
    an_owner_can_unlink_its_own_mode_0000_queue,
    root_with_cap_fowner_can_unlink_any_queue,
);

//! Namespace limits (`queues_max`, `msg_max`, `msgsize_max`, `msg_default`,
//! `msgsize_default`), the order of creation errors, and `RLIMIT_MSGQUEUE`
//! byte accounting (semantics.md §13).
//!
//! Bodies run in a child acting as a fresh unprivileged uid (nothing charged
//! to it yet, and `queues_max` applies whatever the test process's
//! capabilities), nearly always in a fresh IPC namespace with the limits
//! under test. Kernel children reach queues only by name, so queues are
//! created inside the child, and unlinked there too, so that the uid's
//! charge is gone before the child exits.
//!
//! That an unlinked queue still counts against `queues_max` until its last
//! handle closes is checked in `lifetime.rs`.

use mqtwin::{AttributeLimit, Attributes, Error, Limits, MessageQueue, Namespace, OpenOptions};

use crate::harness::{fresh_uid, Child, Harness};

type Outcome = Result<(), Error>;
type Shape = Result<(usize, usize), Error>;

fn fresh(limits: Limits, rlimit: Option<u64>) -> Child {
    let id = fresh_uid();
    Child {
        user: Some((id, id)),
        rlimit,
        limits: Some(limits),
        ..Child::default()
    }
}

fn with_queues_max(queues_max: i64) -> Child {
    fresh(
        Limits {
            queues_max,
            ..Limits::default()
        },
        None,
    )
}

fn with_rlimit(rlimit: u64) -> Child {
    fresh(Limits::default(), Some(rlimit))
}

fn sized(capacity: usize, max_msg_len: usize) -> OpenOptions {
    OpenOptions::read_write()
        .create_new()
        .capacity(capacity)
        .max_msg_len(max_msg_len)
}

fn tiny() -> OpenOptions {
    sized(1, 1)
}

fn open<N: Namespace>(ns: &N, name: &str, opts: &OpenOptions) -> Outcome {
    ns.open(name, opts).map(drop)
}

fn shape<Q: MessageQueue>(r: Result<Q, Error>) -> Shape {
    let a: Attributes = r?.attributes()?;
    Ok((a.capacity, a.max_msg_len))
}

/// Unlinks every name, ignoring errors, so the creator's charge is released.
fn clean_up<N: Namespace, S: AsRef<str>>(ns: &N, names: &[S]) {
    for n in names {
        let _ = ns.unlink(n.as_ref());
    }
}

fn queues_max_limits_creation<H: Harness>(h: &H) {
    let out = h.in_child(&with_queues_max(2), |ns| {
        let names: Vec<String> = (0..3).map(|i| H::child_name(&format!("q{i}"))).collect();
        let results: Vec<Outcome> = names.iter().map(|n| open(ns, n, &tiny())).collect();
        let plain_create = open(ns, &names[2], &OpenOptions::read_write().create());
        clean_up(ns, &names);
        format!("{results:?} {plain_create:?}")
    });
    let expected: Vec<Outcome> = vec![Ok(()), Ok(()), Err(Error::TooManyQueues)];
    let plain_create: Outcome = Err(Error::TooManyQueues);
    assert_eq!(out, format!("{expected:?} {plain_create:?}"));
}

fn queues_max_does_not_stop_opening_existing_queues<H: Harness>(h: &H) {
    let name = H::child_name("only");
    let out = h.in_child(&with_queues_max(1), |ns| {
        let created = open(ns, &name, &tiny());
        let plain = open(ns, &name, &OpenOptions::read_only());
        let create = open(ns, &name, &OpenOptions::read_write().create());
        let exclusive = open(ns, &name, &tiny());
        clean_up(ns, &[&name]);
        format!("{:?}", (created, plain, create, exclusive))
    });
    let expected: (Outcome, Outcome, Outcome, Outcome) = (
        Ok(()),
        Ok(()),
        Ok(()),
        Err(Error::AlreadyExists { name: name.clone() }),
    );
    assert_eq!(out, format!("{expected:?}"));
}

fn a_closed_queue_counts_until_unlinked<H: Harness>(h: &H) {
    let out = h.in_child(&with_queues_max(1), |ns| {
        let (a, b) = (H::child_name("a"), H::child_name("b"));
        let created = open(ns, &a, &tiny()); // closed at once
        let while_linked = open(ns, &b, &tiny());
        let unlinked = ns.unlink(&a);
        let after_unlink = open(ns, &b, &tiny());
        clean_up(ns, &[b]);
        format!("{:?}", (created, while_linked, unlinked, after_unlink))
    });
    let expected: (Outcome, Outcome, Outcome, Outcome) =
        (Ok(()), Err(Error::TooManyQueues), Ok(()), Ok(()));
    assert_eq!(out, format!("{expected:?}"));
}

fn too_many_queues_precedes_invalid_attributes_and_resource_limit<H: Harness>(h: &H) {
    let spec = fresh(
        Limits {
            queues_max: 0,
            ..Limits::default()
        },
        Some(0),
    );
    let out = h.in_child(&spec, |ns| {
        let name = H::child_name("none");
        format!(
            "{:?}",
            (
                open(ns, &name, &sized(0, 16)),
                open(ns, &name, &sized(11, 8193)),
                open(ns, &name, &tiny()),
            )
        )
    });
    let e: Outcome = Err(Error::TooManyQueues);
    assert_eq!(out, format!("{:?}", (&e, &e, &e)));
}

fn invalid_attributes_precede_resource_limit<H: Harness>(h: &H) {
    let out = h.in_child(&with_rlimit(0), |ns| {
        let name = H::child_name("zero-budget");
        format!(
            "{:?}",
            (
                open(ns, &name, &sized(0, 1)),
                open(ns, &name, &sized(11, 1)),
                open(ns, &name, &tiny()),
            )
        )
    });
    let expected: (Outcome, Outcome, Outcome) = (
        Err(Error::InvalidAttributes {
            capacity: 0,
            max_msg_len: 1,
            limit: AttributeLimit::ZeroCapacity,
        }),
        Err(Error::InvalidAttributes {
            capacity: 11,
            max_msg_len: 1,
            limit: AttributeLimit::MsgMax(10),
        }),
        Err(Error::QueueBytesLimit { cost: 97, limit: 0 }),
    );
    assert_eq!(out, format!("{expected:?}"));
}

fn defaults_are_the_smaller_of_default_and_max<H: Harness>(h: &H) {
    for (msg_max, msg_default, msgsize_max, msgsize_default, expected) in
        [(3, 5, 200, 1000, (3, 200)), (50, 5, 2000, 1000, (5, 1000))]
    {
        let limits = Limits {
            msg_max,
            msg_default,
            msgsize_max,
            msgsize_default,
            ..Limits::default()
        };
        let out = h.in_child(&fresh(limits, None), |ns| {
            let name = H::child_name("defaults");
            let got = shape(ns.open(&name, &OpenOptions::read_write().create_new()));
            clean_up(ns, &[name]);
            format!("{got:?}")
        });
        let expected: Shape = Ok(expected);
        assert_eq!(out, format!("{expected:?}"), "{limits:?}");
    }
}

fn one_attribute_alone_takes_the_namespace_default<H: Harness>(h: &H) {
    let limits = Limits {
        msg_max: 50,
        msg_default: 5,
        msgsize_max: 2000,
        msgsize_default: 1000,
        ..Limits::default()
    };
    let out = h.in_child(&fresh(limits, None), |ns| {
        let (a, b) = (H::child_name("cap"), H::child_name("len"));
        let only_capacity = OpenOptions::read_write().create_new().capacity(2);
        let only_len = OpenOptions::read_write().create_new().max_msg_len(64);
        let got = (
            shape(ns.open(&a, &only_capacity)),
            shape(ns.open(&b, &only_len)),
        );
        clean_up(ns, &[a, b]);
        format!("{got:?}")
    });
    let expected: (Shape, Shape) = (Ok((2, 1000)), Ok((5, 64)));
    assert_eq!(out, format!("{expected:?}"));
}

fn msg_max_and_msgsize_max_are_the_ceilings<H: Harness>(h: &H) {
    let limits = Limits {
        msg_max: 3,
        msgsize_max: 200,
        ..Limits::default()
    };
    let out = h.in_child(&fresh(limits, None), |ns| {
        let names: Vec<String> = (0..4).map(|i| H::child_name(&format!("c{i}"))).collect();
        let got: Vec<Outcome> = [(3, 16), (4, 16), (1, 200), (1, 201)]
            .iter()
            .zip(&names)
            .map(|(&(c, m), n)| open(ns, n, &sized(c, m)))
            .collect();
        clean_up(ns, &names);
        format!("{got:?}")
    });
    let expected: Vec<Outcome> = vec![
        Ok(()),
        Err(Error::InvalidAttributes {
            capacity: 4,
            max_msg_len: 16,
            limit: AttributeLimit::MsgMax(3),
        }),
        Ok(()),
        Err(Error::InvalidAttributes {
            capacity: 1,
            max_msg_len: 201,
            limit: AttributeLimit::MsgsizeMax(200),
        }),
    ];
    assert_eq!(out, format!("{expected:?}"));
}

fn a_queue_costs_exactly_its_rlimit_charge<H: Harness>(h: &H) {
    // cost = capacity * (max_msg_len + 48) + min(capacity, 32768) * 48
    for (capacity, max_msg_len, cost) in [
        (1, 1, 97),
        (1, 128, 224),
        (2, 10, 212),
        (10, 1, 970),
        (3, 1000, 3288),
    ] {
        let over = Error::QueueBytesLimit {
            cost,
            limit: cost - 1,
        };
        for (rlimit, expected) in [(cost - 1, Err(over)), (cost, Ok(()))] {
            let out = h.in_child(&with_rlimit(rlimit), |ns| {
                let name = H::child_name("cost");
                let got = open(ns, &name, &sized(capacity, max_msg_len));
                clean_up(ns, &[name]);
                format!("{got:?}")
            });
            let expected: Outcome = expected;
            assert_eq!(
                out,
                format!("{expected:?}"),
                "{{{capacity},{max_msg_len}}} with rlimit {rlimit}"
            );
        }
    }
}

fn the_budget_is_shared_by_all_queues_of_the_user<H: Harness>(h: &H) {
    let out = h.in_child(&with_rlimit(300), |ns| {
        let names: Vec<String> = (0..4).map(|i| H::child_name(&format!("b{i}"))).collect();
        let got: Vec<Outcome> = names.iter().map(|n| open(ns, n, &tiny())).collect();
        clean_up(ns, &names);
        format!("{got:?}")
    });
    let over = Error::QueueBytesLimit {
        cost: 97,
        limit: 300,
    };
    let expected: Vec<Outcome> = vec![Ok(()), Ok(()), Ok(()), Err(over)];
    assert_eq!(out, format!("{expected:?}"));
}

fn opening_an_existing_queue_is_free<H: Harness>(h: &H) {
    // Created by the test process with mode 0666, so any user may open it.
    let name = h.name("free");
    crate::permissions::create_with_exact_mode(h, &name, 0o666);
    let mut spec = with_rlimit(0);
    spec.limits = None; // the test process's namespace, where the queue is
    let never = h.name("never-created");
    let out = h.in_child(&spec, |ns| {
        let create = open(ns, &never, &tiny());
        let existing = open(ns, &name, &OpenOptions::read_write());
        let with_create = open(ns, &name, &OpenOptions::read_write().create());
        format!("{:?}", (create, existing, with_create))
    });
    let over = Error::QueueBytesLimit { cost: 97, limit: 0 };
    let expected: (Outcome, Outcome, Outcome) = (Err(over), Ok(()), Ok(()));
    assert_eq!(out, format!("{expected:?}"));
}

fn an_unlinked_open_queue_stays_charged_until_closed<H: Harness>(h: &H) {
    let out = h.in_child(&with_rlimit(97), |ns| {
        let (a, b) = (H::child_name("a"), H::child_name("b"));
        let q = ns.open(&a, &tiny());
        let unlinked = ns.unlink(&a);
        let while_open = open(ns, &b, &tiny());
        drop(q);
        let after_close = open(ns, &b, &tiny());
        clean_up(ns, &[b]);
        format!("{:?}", (unlinked, while_open, after_close))
    });
    let over = Error::QueueBytesLimit {
        cost: 97,
        limit: 97,
    };
    let expected: (Outcome, Outcome, Outcome) = (Ok(()), Err(over), Ok(()));
    assert_eq!(out, format!("{expected:?}"));
}

fn a_closed_queue_stays_charged_until_unlinked<H: Harness>(h: &H) {
    let out = h.in_child(&with_rlimit(97), |ns| {
        let (a, b) = (H::child_name("a"), H::child_name("b"));
        let created = open(ns, &a, &tiny()); // closed at once
        let while_linked = open(ns, &b, &tiny());
        let unlinked = ns.unlink(&a);
        let after_unlink = open(ns, &b, &tiny());
        clean_up(ns, &[b]);
        format!("{:?}", (created, while_linked, unlinked, after_unlink))
    });
    let expected: (Outcome, Outcome, Outcome, Outcome) = (
        Ok(()),
        Err(Error::QueueBytesLimit {
            cost: 97,
            limit: 97,
        }),
        Ok(()),
        Ok(()),
    );
    assert_eq!(out, format!("{expected:?}"));
}

fn the_default_rlimit_fits_nine_default_queues<H: Harness>(h: &H) {
    let out = h.in_child(
        &with_rlimit(mqtwin::limits::DEFAULT_RLIMIT_MSGQUEUE),
        |ns| {
            let names: Vec<String> = (0..10).map(|i| H::child_name(&format!("d{i}"))).collect();
            let got: Vec<Outcome> = names
                .iter()
                .map(|n| open(ns, n, &OpenOptions::read_write().create_new()))
                .collect();
            clean_up(ns, &names);
            format!("{got:?}")
        },
    );
    let mut expected: Vec<Outcome> = vec![Ok(()); 9];
    let (capacity, max_msg_len) = Limits::default().defaults();
    expected.push(Err(Error::QueueBytesLimit {
        cost: mqtwin::limits::queue_cost(capacity, max_msg_len),
        limit: mqtwin::limits::DEFAULT_RLIMIT_MSGQUEUE,
    }));
    assert_eq!(out, format!("{expected:?}"));
}

crate::instantiate!(
    queues_max_limits_creation,
    queues_max_does_not_stop_opening_existing_queues,
    a_closed_queue_counts_until_unlinked,
    too_many_queues_precedes_invalid_attributes_and_resource_limit,
    invalid_attributes_precede_resource_limit,
    defaults_are_the_smaller_of_default_and_max,
    one_attribute_alone_takes_the_namespace_default,
    msg_max_and_msgsize_max_are_the_ceilings,
    a_queue_costs_exactly_its_rlimit_charge,
    the_budget_is_shared_by_all_queues_of_the_user,
    opening_an_existing_queue_is_free,
    an_unlinked_open_queue_stays_charged_until_closed,
    a_closed_queue_stays_charged_until_unlinked,
    the_default_rlimit_fits_nine_default_queues,
);

//! Lockstep differential tests: random operation sequences run on the twin
//! and on the kernel, with the whole outcome of every step and the state of
//! every open handle compared (`mqtwin::testing::Lockstep`).
//!
//! The kernel side runs in a forked sandbox: a private IPC namespace (so
//! names, `queues_count` and the sysctls are the run's own) and one process
//! per simulated user, each with its own fresh uid, groups, umask,
//! capabilities and `RLIMIT_MSGQUEUE`; the twin acts as the same identities.
//! It needs root (`CAP_SYS_ADMIN`, `CAP_SETUID`).
//!
//! - `lockstep_single_user`: one unprivileged user.
//! - `lockstep_multi_user`: four users in one namespace (two sharing a
//!   group, one with a supplementary group and a small rlimit, one with
//!   `CAP_DAC_OVERRIDE` + `CAP_FOWNER` but not root), so permission,
//!   ownership and accounting rules are compared too.
//! - `twin_matches_model` (every platform): the twin against the
//!   independent reference model in `mqtwin::testing::model`.
//! - `kernel_side_known_answers`, `generator_reaches_every_outcome`: the
//!   comparison is not vacuous (the kernel side gives Linux's answers; the
//!   generator reaches every kind of outcome).
//! - `negative_queues_max_does_not_limit`: a divergence the fuzzer found,
//!   pinned.
//!
//! The property tests run 2,000 sequences of 20–60 ops (after one open per
//! user) by default; `PROPTEST_CASES` overrides that. A failure shrinks to a
//! minimal sequence, prints the divergence with the steps before it, and its
//! seed is saved in `differential/tests/differential.proptest-regressions`, replayed
//! first on every run. `MQTWIN_DIFF_STATS=1 ... -- --nocapture` prints the
//! sequence and op counts and the time of each lockstep test:
//!
//! ```text
//! cargo test -p mqtwin-differential
//! MQTWIN_DIFF_STATS=1 PROPTEST_CASES=25000 cargo test --release -p mqtwin-differential \
//!     lockstep -- --nocapture
//! ```

use mqtwin::testing::{
    AccessSel, BadName, BadSignal, Buf, Call, Create, InterestSel, Len, Mode, NameSel, NotifySel,
    Op, Prio, Scenario, Size, Sysctls, Wait, When,
};
use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence, TestRunner};

/// Sequences per test unless `PROPTEST_CASES` says otherwise.
const DEFAULT_CASES: u32 = 2_000;

fn config() -> Config {
    let mut config = Config {
        source_file: Some(file!()),
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource(
            "proptest-regressions",
        ))),
        // Shrinking a 60-op sequence takes many runs; allow them.
        max_shrink_iters: 100_000,
        ..Config::default()
    };
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = DEFAULT_CASES;
    }
    config
}

fn name() -> impl Strategy<Value = NameSel> {
    let bad = prop_oneof![
        Just(BadName::Empty),
        Just(BadName::NoSlash),
        Just(BadName::JustSlash),
        Just(BadName::InnerSlash),
        Just(BadName::Dot),
        Just(BadName::DotDot),
        Just(BadName::TooLong),
        Just(BadName::WayTooLong),
        Just(BadName::Nul),
    ];
    prop_oneof![
        16 => (0u8..3).prop_map(NameSel::Pool),
        1 => Just(NameSel::Longest),
        1 => bad.prop_map(NameSel::Bad),
    ]
}

fn size(small: std::ops::RangeInclusive<u16>) -> impl Strategy<Value = Size> {
    prop_oneof![
        10 => Just(Size::Unset),
        10 => small.prop_map(Size::Value),
        1 => Just(Size::Value(0)),
        2 => Just(Size::Max),
        1 => Just(Size::MaxPlus1),
        1 => any::<u16>().prop_map(Size::Value),
        1 => prop_oneof![
            Just(Size::HardMax),
            Just(Size::HardMaxPlus1),
            Just(Size::Wrap),
            Just(Size::Huge)
        ],
    ]
}

fn mode() -> impl Strategy<Value = Mode> {
    let common = prop_oneof![
        Just(0o600u16),
        Just(0o644),
        Just(0o666),
        Just(0o660),
        Just(0o620),
        Just(0o640),
        Just(0o604),
        Just(0o602),
        Just(0o400),
        Just(0o200),
        Just(0),
        Just(0o777),
        Just(0o7777),
    ];
    prop_oneof![
        3 => Just(Mode::Default),
        4 => common.prop_map(Mode::Bits),
        1 => any::<u16>().prop_map(Mode::Bits),
    ]
}

fn when() -> impl Strategy<Value = When> {
    prop_oneof![
        Just(When::JustBeforeEpoch),
        Just(When::LongBeforeEpoch),
        Just(When::Epoch),
        Just(When::Past),
        Just(When::Now),
        Just(When::Soon),
        Just(When::Later),
        Just(When::Latest),
    ]
}

fn call() -> impl Strategy<Value = Call> {
    let wait = prop_oneof![
        Just(Wait::Zero),
        Just(Wait::Nano),
        Just(Wait::Soon),
        Just(Wait::Hour),
        Just(Wait::Forever),
    ];
    prop_oneof![
        4 => Just(Call::Try),
        2 => Just(Call::Blocking),
        3 => when().prop_map(Call::Deadline),
        2 => wait.prop_map(Call::Timeout),
    ]
}

fn prio() -> impl Strategy<Value = Prio> {
    prop_oneof![
        8 => (0u16..=5).prop_map(Prio::Value),
        1 => any::<u16>().prop_map(Prio::Value),
        1 => Just(Prio::Highest),
        1 => Just(Prio::FirstInvalid),
        1 => Just(Prio::Max),
        1 => any::<u32>().prop_map(Prio::Raw),
    ]
}

fn open(users: u8) -> impl Strategy<Value = Op> {
    let access = prop_oneof![
        1 => Just(AccessSel::ReadOnly),
        1 => Just(AccessSel::WriteOnly),
        2 => Just(AccessSel::ReadWrite),
    ];
    let create = prop_oneof![
        2 => Just(Create::No),
        5 => Just(Create::Create),
        2 => Just(Create::CreateNew),
    ];
    (
        0..users,
        name(),
        access,
        create,
        prop::bool::weighted(0.2),
        mode(),
        size(1..=4),
        size(1..=64),
    )
        .prop_map(
            |(who, name, access, create, nonblocking, mode, capacity, max_msg_len)| Op::Open {
                who,
                name,
                access,
                create,
                nonblocking,
                mode,
                capacity,
                max_msg_len,
            },
        )
}

fn op(users: u8) -> impl Strategy<Value = Op> {
    let who = 0..users;
    let handle = 0u8..8;
    let open = open(users);
    let len = prop_oneof![
        4 => (0u16..=16).prop_map(Len::Value),
        1 => Just(Len::Zero),
        2 => Just(Len::Max),
        1 => Just(Len::MaxPlus1),
        1 => any::<u16>().prop_map(Len::Value),
    ];
    let send = (
        who.clone(),
        handle.clone(),
        len,
        any::<u8>(),
        prio(),
        call(),
    )
        .prop_map(|(who, handle, len, fill, priority, call)| Op::Send {
            who,
            handle,
            len,
            fill,
            priority,
            call,
        });
    let buf = prop_oneof![
        5 => Just(Buf::Exact),
        1 => (0u16..=2).prop_map(Buf::Smaller),
        1 => any::<u16>().prop_map(Buf::Smaller),
        2 => (0u16..=100).prop_map(Buf::Larger),
        1 => Just(Buf::Empty),
    ];
    let receive =
        (who.clone(), handle.clone(), buf, call()).prop_map(|(who, handle, buf, call)| {
            Op::Receive {
                who,
                handle,
                buf,
                call,
            }
        });
    prop_oneof![
        8 => open,
        1 => (who.clone(), handle.clone()).prop_map(|(who, handle)| Op::Close { who, handle }),
        1 => (who.clone(), handle.clone()).prop_map(|(who, handle)| Op::Clone { who, handle }),
        2 => (who.clone(), name()).prop_map(|(who, name)| Op::Unlink { who, name }),
        7 => send,
        6 => receive,
        1 => (who.clone(), handle.clone(), any::<bool>())
            .prop_map(|(who, handle, on)| Op::SetNonblocking { who, handle, on }),
        1 => (who.clone(), handle.clone()).prop_map(|(who, handle)| Op::Attributes { who, handle }),
        2 => (who.clone(), handle.clone(), notify())
            .prop_map(|(who, handle, how)| Op::Notify { who, handle, how }),
        1 => (who.clone(), handle.clone()).prop_map(|(who, handle)| Op::CancelNotify { who, handle }),
        1 => (who.clone(), handle.clone()).prop_map(|(who, handle)| Op::Readiness { who, handle }),
        1 => sysctls().prop_map(|sysctls| Op::SetSysctls { sysctls }),
        1 => (who, handle, interest(), prop::option::weighted(0.8, when())).prop_map(
            |(who, handle, interest, deadline)| Op::WaitReady {
                who,
                handle,
                interest,
                deadline
            }
        ),
    ]
}

fn notify() -> impl Strategy<Value = NotifySel> {
    prop_oneof![
        3 => Just(NotifySel::Silent),
        3 => any::<u8>().prop_map(|value| NotifySel::SignalZero { value }),
        1 => prop_oneof![
            Just(BadSignal::JustAbove),
            Just(BadSignal::Negative),
            Just(BadSignal::Max),
            Just(BadSignal::Min)
        ]
        .prop_map(NotifySel::BadSignal),
    ]
}

fn interest() -> impl Strategy<Value = InterestSel> {
    prop_oneof![
        Just(InterestSel::Readable),
        Just(InterestSel::Writable),
        Just(InterestSel::Either)
    ]
}

fn sysctls() -> impl Strategy<Value = Sysctls> {
    let varied = (
        prop_oneof![Just(-1i8), Just(-2i8), 0i8..=4],
        0u8..=4,
        prop_oneof![Just(0u16), Just(1), Just(72)],
        0u8..=6,
        prop_oneof![Just(0u16), Just(1), Just(872)],
    )
        .prop_map(
            |(queues_max, msg_max, msgsize_max, msg_default, msgsize_default)| Sysctls {
                queues_max,
                msg_max,
                msgsize_max,
                msg_default,
                msgsize_default,
            },
        );
    prop_oneof![3 => Just(Sysctls::DEFAULT), 2 => varied]
}

/// A scenario: limits, one open per user (so that handle operations of
/// every user have something to act on early), then 20–60 random ops.
fn scenario(users: u8) -> impl Strategy<Value = Scenario> {
    let prelude = prop::collection::vec(open(users), usize::from(users));
    (
        sysctls(),
        prelude,
        prop::collection::vec(op(users), 20..=60),
    )
        .prop_map(|(sysctls, prelude, rest)| {
            let ops = (0..)
                .zip(prelude)
                .map(|(who, op)| op.with_who(who))
                .chain(rest)
                .collect();
            Scenario { sysctls, ops }
        })
}

#[cfg(all(target_os = "linux", feature = "posix"))]
mod kernel {
    use super::*;
    use mqtwin::testing::{Lockstep, Sandbox};
    use mqtwin::twin::{Capabilities, Credentials};
    use proptest::test_runner::TestCaseError;
    use std::cell::{Cell, RefCell};
    use std::time::{Duration, Instant};

    fn user(k: u32, gid: u32) -> Credentials {
        Credentials::user(Sandbox::fresh_uid(k), gid)
    }

    fn run(users: &[Credentials]) {
        let mut lockstep = Lockstep::new(users, Duration::from_millis(1)).unwrap_or_else(|e| {
            panic!("the kernel sandbox needs root (CAP_SYS_ADMIN, CAP_SETUID): {e}")
        });
        // The kernel side really runs as these identities (read back from
        // /proc/self/status and getrlimit in each user process).
        assert_eq!(lockstep.users(), users);
        let lockstep = RefCell::new(&mut lockstep);
        let (cases, ops) = (Cell::new(0u64), Cell::new(0u64));
        let start = Instant::now();
        let mut runner = TestRunner::new(config());
        let n = users.len() as u8;
        let result = runner.run(&scenario(n), |sc| {
            cases.set(cases.get() + 1);
            ops.set(ops.get() + sc.ops.len() as u64);
            lockstep
                .borrow_mut()
                .run(&sc)
                .map_err(|d| TestCaseError::fail(d.to_string()))
        });
        if let Err(e) = result {
            panic!("{e}");
        }
        if std::env::var_os("MQTWIN_DIFF_STATS").is_some() {
            eprintln!(
                "{} users: {} sequences, {} ops, 0 divergences, {:.1?}",
                users.len(),
                cases.get(),
                ops.get(),
                start.elapsed()
            );
        }
    }

    /// The kernel side answers what Linux answers (so the lockstep
    /// comparison is not between two equally broken sides).
    #[test]
    fn kernel_side_known_answers() {
        use mqtwin::testing::{Message, NamePool, Outcome};
        use mqtwin::{Attributes, Error, Readiness};
        let names = NamePool::unique(3);
        let user = user(1, Sandbox::fresh_uid(1));
        let mut sandbox = Sandbox::spawn(&[user], &names, Duration::from_millis(1))
            .unwrap_or_else(|e| panic!("the kernel sandbox needs root: {e}"));
        let open = |create, access| Op::Open {
            who: 0,
            name: NameSel::Pool(0),
            access,
            create,
            nonblocking: false,
            mode: Mode::Default,
            capacity: Size::Value(2),
            max_msg_len: Size::Value(16),
        };
        let send = |len, priority| Op::Send {
            who: 0,
            handle: 0,
            len,
            fill: 1,
            priority: Prio::Value(priority),
            call: Call::Try,
        };
        let receive = |call| Op::Receive {
            who: 0,
            handle: 0,
            buf: Buf::Exact,
            call,
        };
        let notify = Op::Notify {
            who: 0,
            handle: 0,
            how: NotifySel::Silent,
        };
        let attrs = |n| Attributes {
            capacity: 2,
            max_msg_len: 16,
            current_messages: n,
            nonblocking: false,
        };
        let expected = [
            (
                open(Create::No, AccessSel::ReadWrite),
                Outcome::Opened(Err(Error::NotFound {
                    name: names.name(NameSel::Pool(0)),
                })),
            ),
            (
                open(Create::CreateNew, AccessSel::ReadWrite),
                Outcome::Opened(Ok(attrs(0))),
            ),
            (send(Len::Value(3), 5), Outcome::Sent(Ok(()))),
            (
                send(Len::MaxPlus1, 5),
                Outcome::Sent(Err(Error::MessageTooLong { len: 17, limit: 16 })),
            ),
            (notify.clone(), Outcome::Notified(Ok(()))),
            (notify, Outcome::Notified(Err(Error::Busy))),
            (
                Op::Readiness { who: 0, handle: 0 },
                Outcome::Readiness(Ok(Readiness {
                    readable: true,
                    writable: true,
                })),
            ),
            (
                receive(Call::Try),
                Outcome::Received(Ok(Message {
                    bytes: vec![1, 32, 63],
                    priority: 5,
                    tail_untouched: true,
                })),
            ),
            (
                receive(Call::Try),
                Outcome::Received(Err(Error::WouldBlock)),
            ),
            (
                receive(Call::Deadline(When::Past)),
                Outcome::Received(Err(Error::TimedOut)),
            ),
            (receive(Call::Blocking), Outcome::WouldWait),
        ];
        let ops: Vec<Op> = expected.iter().map(|(op, _)| op.clone()).collect();
        let records = sandbox.run(&Sysctls::DEFAULT, &ops).unwrap();
        assert_eq!(records.len(), ops.len());
        for ((op, want), got) in expected.iter().zip(&records) {
            assert_eq!(got.outcome, format!("{want:?}"), "{op:?}");
        }
        // The state after the last step: one handle, empty, and the
        // registration made while the queue held a message still there
        // (nothing has arrived in the empty queue since).
        assert_eq!(
            records.last().unwrap().states,
            [format!(
                "{:?}",
                [mqtwin::testing::HandleState {
                    attributes: Ok(attrs(0)),
                    file: Some(mqtwin::testing::QueueFile {
                        queued_bytes: 0,
                        notify_registered: true,
                    }),
                }]
            )]
        );
    }

    /// Divergence found by the `twin_vs_kernel` fuzzer: the kernel compares
    /// `queues_count >= queues_max` as unsigned ints, so a negative
    /// `queues_max` lifts the limit instead of forbidding creation (the twin
    /// refused with `TooManyQueues`). Both sides must now agree on it.
    #[test]
    fn negative_queues_max_does_not_limit() {
        use mqtwin::testing::{Group, NamePool, Outcome};
        use mqtwin::{Attributes, Error};
        let names = NamePool::unique(3);
        let users = [user(2, Sandbox::fresh_uid(2))];
        let mut sandbox = Sandbox::spawn(&users, &names, Duration::from_millis(1))
            .unwrap_or_else(|e| panic!("the kernel sandbox needs root: {e}"));
        let create = |name| Op::Open {
            who: 0,
            name,
            access: AccessSel::ReadWrite,
            create: Create::CreateNew,
            nonblocking: false,
            mode: Mode::Default,
            capacity: Size::Value(1),
            max_msg_len: Size::Value(8),
        };
        let ok = Outcome::Opened(Ok(Attributes {
            capacity: 1,
            max_msg_len: 8,
            current_messages: 0,
            nonblocking: false,
        }));
        for (queues_max, want) in [
            (-2i8, [ok.clone(), ok.clone(), ok.clone(), ok.clone()]), // -1
            (
                0,
                [0, 1, 2, 3].map(|_| Outcome::Opened(Err(Error::TooManyQueues))),
            ),
            (
                2,
                [
                    ok.clone(),
                    ok.clone(),
                    Outcome::Opened(Err(Error::TooManyQueues)),
                    Outcome::Opened(Err(Error::TooManyQueues)),
                ],
            ),
        ] {
            let sysctls = Sysctls {
                queues_max,
                ..Sysctls::DEFAULT
            };
            let ops = [
                create(NameSel::Pool(0)),
                create(NameSel::Pool(1)),
                create(NameSel::Pool(2)),
                create(NameSel::Longest),
            ];
            let kernel: Vec<String> = sandbox
                .run(&sysctls, &ops)
                .unwrap()
                .into_iter()
                .map(|r| r.outcome)
                .collect();
            let (_twin, mut group) =
                Group::twin(sandbox.users(), sysctls.limits(), &names, Duration::ZERO).unwrap();
            let twin: Vec<String> = ops
                .iter()
                .map(|op| format!("{:?}", group.apply(op)))
                .collect();
            let want: Vec<String> = want.iter().map(|o| format!("{o:?}")).collect();
            assert_eq!(
                kernel,
                want,
                "kernel, queues_max {}",
                sysctls.limits().queues_max
            );
            assert_eq!(
                twin,
                want,
                "twin, queues_max {}",
                sysctls.limits().queues_max
            );
        }
    }

    #[test]
    fn lockstep_single_user() {
        run(&[user(0, Sandbox::fresh_uid(0))]);
    }

    #[test]
    fn lockstep_multi_user() {
        let shared = Sandbox::fresh_uid(8);
        let other = Sandbox::fresh_uid(9);
        let capable = Sandbox::fresh_uid(10);
        run(&[
            Credentials {
                umask: 0o022,
                ..user(4, shared)
            },
            Credentials {
                umask: 0o002,
                ..user(5, shared)
            },
            Credentials {
                umask: 0o077,
                groups: vec![shared],
                rlimit_msgqueue: 100_000,
                ..user(6, other)
            },
            Credentials {
                umask: 0,
                capabilities: Capabilities::CONTAINER_ROOT,
                rlimit_msgqueue: 3_000,
                ..user(7, capable)
            },
        ]);
    }
}

/// Simulated users for the twin-only tests: two sharing a group, one with
/// a supplementary group and a small rlimit, one with `CAP_DAC_OVERRIDE` and
/// `CAP_FOWNER`.
fn twin_users() -> Vec<mqtwin::twin::Credentials> {
    use mqtwin::twin::{Capabilities, Credentials};
    vec![
        Credentials::user(5001, 500),
        Credentials {
            umask: 0o002,
            ..Credentials::user(5002, 500)
        },
        Credentials {
            umask: 0o077,
            groups: vec![500],
            rlimit_msgqueue: 100_000,
            ..Credentials::user(5003, 501)
        },
        Credentials {
            umask: 0,
            capabilities: Capabilities::CONTAINER_ROOT,
            rlimit_msgqueue: 3_000,
            ..Credentials::user(5004, 502)
        },
    ]
}

/// The twin against the independent reference model
/// (`mqtwin::testing::model`), on every platform: exact outcomes, handle
/// states, queue count and bytes charged per user after every step.
#[test]
fn twin_matches_model() {
    use mqtwin::testing::{model::Model, Group, NamePool};
    let users = twin_users();
    let names = NamePool::new("/model-", 3);
    let horizon = std::time::Duration::from_micros(100);
    let mut runner = TestRunner::new(config());
    let result = runner.run(&scenario(users.len() as u8), |sc| {
        let limits = sc.sysctls.limits();
        let (twin, mut group) = Group::twin(&users, limits, &names, horizon).unwrap();
        let mut model = Model::new(&users, limits, names.clone(), horizon);
        for (step, op) in sc.ops.iter().enumerate() {
            let got = group.apply(op);
            prop_assert_eq!(
                &got,
                &model.apply(op),
                "outcome of step {} ({:?})",
                step,
                op
            );
            prop_assert_eq!(
                group.snapshot(),
                model.snapshot(),
                "states after step {}",
                step
            );
            prop_assert_eq!(
                twin.queue_count(),
                model.queue_count(),
                "queues after step {}",
                step
            );
            for u in &users {
                prop_assert_eq!(
                    twin.charged_bytes(u.uid),
                    model.charged_bytes(u.uid),
                    "bytes of uid {} after step {}",
                    u.uid,
                    step
                );
            }
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

/// The remote backend against the in-process twin: the same sequences on
/// a twin served over a socket (one client connection: this process, with
/// its real identity) and on a twin in this process acting as that same
/// identity; exact outcomes, handle states, queue count and bytes charged
/// after every step. (One user only: a second user would need a second
/// process, which the contract suite's forked children cover.)
#[cfg(all(unix, feature = "remote"))]
#[test]
fn remote_matches_twin() {
    use mqtwin::remote::{Remote, Server};
    use mqtwin::testing::{Driver, Group, NamePool};
    use mqtwin::twin::{Credentials, Twin};
    let me = Credentials::current().unwrap_or_default();
    let users = vec![me.clone()];
    let names = NamePool::new("/remote-", 3);
    let horizon = std::time::Duration::from_micros(100);
    let path = std::env::temp_dir().join(format!("mqtwin-diff-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let mut config = config();
    // Every case is a fresh server, so fewer cases than the in-process runs.
    config.cases = config.cases.min(64);
    let mut runner = TestRunner::new(config);
    let result = runner.run(&scenario(1), |sc| {
        let limits = sc.sysctls.limits();
        let (twin, mut local) = Group::twin(&users, limits, &names, horizon).unwrap();
        let served = Twin::with_credentials(me.clone());
        served.set_limits(limits).unwrap();
        let server = Server::bind(&path, served).unwrap();
        let client = Remote::connect(&path).unwrap();
        let setter = client.clone();
        let mut remote = Group::new(vec![
            Driver::new(client, names.clone(), limits).horizon(horizon)
        ])
        .on_set_sysctls(move |l| setter.set_limits(l));
        for (step, op) in sc.ops.iter().enumerate() {
            let got = remote.apply(op);
            prop_assert_eq!(
                &got,
                &local.apply(op),
                "outcome of step {} ({:?})",
                step,
                op
            );
            prop_assert_eq!(
                remote.snapshot(),
                local.snapshot(),
                "states after step {}",
                step
            );
            let served = server.twin();
            prop_assert_eq!(
                served.queue_count(),
                twin.queue_count(),
                "queues after step {}",
                step
            );
            prop_assert_eq!(
                served.charged_bytes(me.uid),
                twin.charged_bytes(me.uid),
                "bytes after step {}",
                step
            );
        }
        drop(remote);
        drop(server);
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

/// The generator is not degenerate: over a few hundred twin runs as the
/// multi-user identities, every kind of outcome the lockstep tests are meant
/// to compare shows up.
#[test]
fn generator_reaches_every_outcome() {
    use mqtwin::testing::{Group, NamePool, Outcome};
    use mqtwin::Error;
    use proptest::strategy::ValueTree;
    use std::collections::BTreeMap;

    let users = twin_users();
    let names = NamePool::new("/gen-", 3);
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut runner = TestRunner::deterministic();
    let strategy = scenario(users.len() as u8);
    for _ in 0..300 {
        let sc = strategy.new_tree(&mut runner).unwrap().current();
        let (_twin, mut group) = Group::twin(
            &users,
            sc.sysctls.limits(),
            &names,
            std::time::Duration::from_micros(50),
        )
        .unwrap();
        for op in &sc.ops {
            let kind = match group.apply(op) {
                Outcome::Opened(Ok(_)) => "Opened(Ok)".to_string(),
                Outcome::Received(Ok(_)) => "Received(Ok)".to_string(),
                Outcome::Readiness(Ok(_)) => "Readiness(Ok)".to_string(),
                Outcome::Ready(Ok(_)) => "Ready(Ok)".to_string(),
                Outcome::Attributes(Ok(_)) => "Attributes(Ok)".to_string(),
                Outcome::NonblockingSet(Ok(_)) => "NonblockingSet(Ok)".to_string(),
                Outcome::Opened(Err(e))
                | Outcome::Received(Err(e))
                | Outcome::Sent(Err(e))
                | Outcome::Unlinked(Err(e))
                | Outcome::Notified(Err(e))
                | Outcome::Ready(Err(e))
                | Outcome::Cloned(Err(e)) => {
                    let e = match e {
                        Error::InvalidName { problem, .. } => format!("InvalidName {problem:?}"),
                        e => format!("{e:?}"),
                    };
                    e.split([' ', '{', '(']).next().unwrap().to_string()
                }
                o => format!("{o:?}"),
            };
            *seen.entry(kind).or_default() += 1;
        }
    }
    if std::env::var_os("MQTWIN_SHOW_OUTCOMES").is_some() {
        eprintln!("{seen:#?}");
    }
    let missing: Vec<&str> = [
        "Opened(Ok)",
        "Received(Ok)",
        "Sent(Ok(()))",
        "Closed",
        "Cloned(Ok(()))",
        "Unlinked(Ok(()))",
        "WouldWait",
        "NoHandle",
        "NonblockingSet(Ok)",
        "InvalidName",
        "NotFound",
        "AlreadyExists",
        "PermissionDenied",
        "InvalidAttributes",
        "TooManyQueues",
        "QueueBytesLimit",
        "InvalidPriority",
        "InvalidDeadline",
        "NotReadable",
        "NotWritable",
        "MessageTooLong",
        "BufferTooSmall",
        "WouldBlock",
        "TimedOut",
        "Notified(Ok(()))",
        "Busy",
        "InvalidSignal",
        "NotifyCancelled(Ok(()))",
        "Readiness(Ok)",
        "Ready(Ok)",
        "Attributes(Ok)",
        "LimitsSet",
    ]
    .into_iter()
    .filter(|k| !seen.contains_key(*k))
    .collect();
    assert!(
        missing.is_empty(),
        "never produced: {missing:?}\nseen: {seen:#?}"
    );
}

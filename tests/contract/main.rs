//! The contract suite: every rule of the twin, written once as a generic
//! function over [`harness::Harness`] and run against both backends.
//!
//! Each module ends with `instantiate!(...)`, which creates `<module>::twin::<test>`
//! (everywhere) and `<module>::kernel::<test>` (Linux with the `posix`
//! feature). Both run the same body with the same expected values, so the
//! two backends are compared through every assertion.

mod harness;
#[cfg(all(target_os = "linux", feature = "posix", feature = "remote"))]
mod remote_harness;
mod signals;

/// Creates the per-backend `#[test]`s for generic test functions.
macro_rules! instantiate {
    // The rules that hold over the remote backend too (`remote::<test>`,
    // Linux with the `posix` and `remote` features: its children are forked
    // clients of an in-process server).
    ($($test:ident),* $(,)?) => {
        crate::instantiate!(@local $($test),*);
        #[cfg(all(target_os = "linux", feature = "posix", feature = "remote"))]
        mod remote {
            $(
                #[test]
                fn $test() {
                    crate::harness::skip_if_unprivileged(
                        concat!(module_path!(), "::", stringify!($test)),
                        || super::$test(&crate::harness::RemoteHarness::new()),
                    );
                }
            )*
        }
    };
    // Only the in-process backends (the caller says why).
    (@local $($test:ident),* $(,)?) => {
        mod twin {
            $(
                #[test]
                fn $test() {
                    super::$test(&crate::harness::TwinHarness::new());
                }
            )*
        }
        #[cfg(all(target_os = "linux", feature = "posix"))]
        mod kernel {
            $(
                #[test]
                fn $test() {
                    // Skips (one line on stderr) when the machine cannot
                    // give the test a privilege it needs.
                    crate::harness::skip_if_unprivileged(
                        concat!(module_path!(), "::", stringify!($test)),
                        || super::$test(&crate::harness::KernelHarness::new()),
                    );
                }
            )*
        }
    };
}
pub(crate) use instantiate;

mod blocking;
mod conveniences;
mod deadlines;
mod dynamic;
mod lifetime;
mod limits;
mod names;
mod notify;
mod notify_lifetime;
mod open;
mod ordering;
mod permissions;
mod readiness;
mod scheduling;
mod send_receive;

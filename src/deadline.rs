//! Deadlines and priorities: the argument checks every send and receive makes
//! first, shared by both backends.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::error::Error;

/// Priorities are `0..MQ_PRIO_MAX`, i.e. `0..=32767`, on Linux.
pub const MQ_PRIO_MAX: u32 = 32_768;

/// A deadline as the kernel sees it: seconds and nanoseconds since the epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Timespec {
    pub(crate) sec: i64,
    pub(crate) nsec: u32,
}

/// Converts a deadline to a kernel `timespec`. `None` (wait forever) stays `None`.
///
/// The kernel rejects `tv_sec < 0` with `EINVAL` before any other check,
/// even when the call would not block. A `SystemTime` always has valid
/// nanoseconds, so the only invalid deadlines are those before the Unix epoch.
///
/// # Errors
///
/// [`Error::InvalidDeadline`] for a deadline before the Unix epoch.
pub(crate) fn check(deadline: Option<SystemTime>) -> Result<Option<Timespec>, Error> {
    validate(deadline)?;
    let Some(d) = deadline else { return Ok(None) };
    let since = d
        .duration_since(UNIX_EPOCH)
        .map_err(|_| Error::InvalidDeadline)?;
    Ok(Some(Timespec {
        sec: i64::try_from(since.as_secs()).unwrap_or(i64::MAX),
        nsec: since.subsec_nanos(),
    }))
}

/// The kernel's deadline rule alone: a deadline before the Unix epoch
/// (`tv_sec < 0`) is `EINVAL`; `None` and every later time are valid.
///
/// # Errors
///
/// [`Error::InvalidDeadline`].
pub(crate) fn validate(deadline: Option<SystemTime>) -> Result<(), Error> {
    match deadline {
        Some(d) if d < UNIX_EPOCH => Err(Error::InvalidDeadline),
        _ => Ok(()),
    }
}

/// Checks a priority: `EINVAL` for 32768 and above.
///
/// # Errors
///
/// [`Error::InvalidPriority`].
pub(crate) fn check_priority(priority: u32) -> Result<(), Error> {
    if priority < MQ_PRIO_MAX {
        Ok(())
    } else {
        Err(Error::InvalidPriority { priority })
    }
}

/// The deadline of a relative timeout: `now + timeout`, saturating at
/// [`latest`]. Never `None`: a timeout too large to represent (such as
/// `Duration::MAX`) is the latest deadline, which the kernel treats as "no
/// timeout" (it saturates to `KTIME_MAX`, ~2262) and a virtual clock reaches
/// only when advanced that far.
pub(crate) fn after(now: SystemTime, timeout: Duration) -> Option<SystemTime> {
    Some(saturating_add(now, timeout))
}

/// `t + d`, or [`latest`] when the sum is not representable.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use mqtwin::deadline::{latest, saturating_add};
/// let now = SystemTime::now();
/// assert_eq!(saturating_add(now, Duration::MAX), latest());
/// assert_eq!(saturating_add(now, Duration::from_secs(1)), now + Duration::from_secs(1));
/// ```
pub fn saturating_add(t: SystemTime, d: Duration) -> SystemTime {
    t.checked_add(d).unwrap_or_else(latest).min(latest())
}

/// The latest time a [`SystemTime`] can hold on this platform (on Unix:
/// `i64::MAX` seconds and 999,999,999 ns after the epoch). Deadlines and
/// virtual clocks saturate here instead of overflowing.
pub fn latest() -> SystemTime {
    static LATEST: std::sync::OnceLock<SystemTime> = std::sync::OnceLock::new();
    *LATEST.get_or_init(|| {
        // Climb from the epoch with the largest step that still fits; a
        // failed step is halved. Portable: no assumption about the platform's
        // representation, and at most a few hundred additions.
        let mut t = UNIX_EPOCH;
        let mut step = Duration::MAX;
        while !step.is_zero() {
            match t.checked_add(step) {
                Some(next) => t = next,
                None => step /= 2,
            }
        }
        t
    })
}

/// A C `struct timespec` deadline (`abs_timeout` of `mq_timedsend` and
/// `mq_timedreceive`) as a [`SystemTime`], by the kernel's rule
/// (`timespec64_valid`): `tv_sec < 0` or `tv_nsec` outside
/// `0..=999_999_999` is [`Error::InvalidDeadline`] (`EINVAL`), a check the
/// kernel makes before any other, also when the call would not wait.
/// Seconds past what a `SystemTime` holds saturate at [`latest`].
/// For C bindings such as libmqtwin (`capi/`).
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use mqtwin::{deadline::from_timespec, Error};
/// assert_eq!(from_timespec(1, 5), Ok(UNIX_EPOCH + Duration::new(1, 5)));
/// assert_eq!(from_timespec(0, 1_000_000_000), Err(Error::InvalidDeadline));
/// assert_eq!(from_timespec(-1, 0), Err(Error::InvalidDeadline));
/// assert_eq!(from_timespec(0, -1), Err(Error::InvalidDeadline));
/// ```
///
/// # Errors
///
/// [`Error::InvalidDeadline`] for a timespec the kernel calls invalid.
pub fn from_timespec(sec: i64, nsec: i64) -> Result<SystemTime, Error> {
    let (Ok(sec), Ok(nsec)) = (u64::try_from(sec), u32::try_from(nsec)) else {
        return Err(Error::InvalidDeadline);
    };
    if nsec > 999_999_999 {
        return Err(Error::InvalidDeadline);
    }
    Ok(saturating_add(UNIX_EPOCH, Duration::new(sec, nsec)))
}

/// The deadline a non-blocking attempt uses: the epoch, always in the past and
/// always valid, so a call that would wait fails at once with `ETIMEDOUT`.
pub(crate) const IMMEDIATE: SystemTime = UNIX_EPOCH;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn before_epoch_is_invalid() {
        assert_eq!(
            check(Some(UNIX_EPOCH - Duration::from_nanos(1))),
            Err(Error::InvalidDeadline)
        );
        assert_eq!(
            check(Some(UNIX_EPOCH)),
            Ok(Some(Timespec { sec: 0, nsec: 0 }))
        );
        assert_eq!(check(None), Ok(None));
        assert_eq!(check_priority(32767), Ok(()));
        assert!(latest().checked_add(Duration::from_nanos(1)).is_none());
        assert_eq!(after(UNIX_EPOCH, Duration::MAX), Some(latest()));
        #[cfg(unix)]
        assert_eq!(
            latest(),
            UNIX_EPOCH + Duration::new(i64::MAX as u64, 999_999_999)
        );
        assert_eq!(
            check_priority(32768),
            Err(Error::InvalidPriority { priority: 32768 })
        );
    }

    #[test]
    fn c_timespecs_follow_the_kernel_rule() {
        assert_eq!(from_timespec(0, 0), Ok(UNIX_EPOCH));
        assert_eq!(
            from_timespec(0, 999_999_999),
            Ok(UNIX_EPOCH + Duration::from_nanos(999_999_999))
        );
        assert!(from_timespec(i64::MAX, 999_999_999).is_ok());
        for (sec, nsec) in [(0, 1_000_000_000), (-1, 0), (0, -1), (i64::MIN, i64::MAX)] {
            assert_eq!(from_timespec(sec, nsec), Err(Error::InvalidDeadline));
        }
    }
}

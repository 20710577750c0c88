//! The scheduling priority (nice value) of simulated threads: the kernel
//! serves blocked senders and receivers by scheduling priority first and
//! arrival second (`K:wq_add`), and so does the twin, by this value.

use std::cell::Cell;

/// The most favoured nice value (served first).
pub const NICE_MIN: i32 = -20;
/// The least favoured nice value (served last).
pub const NICE_MAX: i32 = 19;

thread_local! {
    static NICE: Cell<i32> = const { Cell::new(0) };
}

/// Sets the nice value of the calling thread, as the twin sees it, and
/// returns the value set.
///
/// The twin's counterpart of `setpriority(PRIO_PROCESS, 0, nice)`, which on
/// Linux changes only the calling thread. Values are clamped to
/// [`NICE_MIN`]`..=`[`NICE_MAX`], as the kernel clamps them. The value holds
/// for every twin namespace and is read when the thread blocks in a send or
/// receive: a lower nice is served before a higher one, equal nice values in
/// arrival order. Every thread starts at 0.
///
/// Unlike Linux, a new thread does not inherit its creator's value, and
/// lowering the value needs no privilege (the kernel needs `CAP_SYS_NICE` or
/// `RLIMIT_NICE` for that).
///
/// ```
/// use mqtwin::{MessageQueue, Namespace, OpenOptions, twin::{set_thread_nice, Twin}};
/// let ns = Twin::new();
/// let q = ns.open("/q", &OpenOptions::read_write().create())?;
/// std::thread::scope(|s| {
///     let background = s.spawn(|| {
///         set_thread_nice(10);
///         q.receive(&mut [0; 8192]).map(|m| m.priority)
///     });
///     ns.wait_blocked(1);
///     let urgent = s.spawn(|| q.receive(&mut [0; 8192]).map(|m| m.priority));
///     ns.wait_blocked(2);
///     // Nice 0 blocked later but is served first.
///     q.send(b"first", 1).unwrap();
///     assert_eq!(urgent.join().unwrap(), Ok(1));
///     q.send(b"second", 2).unwrap();
///     assert_eq!(background.join().unwrap(), Ok(2));
/// });
/// # Ok::<(), mqtwin::Error>(())
/// ```
pub fn set_thread_nice(nice: i32) -> i32 {
    let nice = nice.clamp(NICE_MIN, NICE_MAX);
    NICE.with(|n| n.set(nice));
    nice
}

/// The nice value of the calling thread, as the twin sees it (0 unless
/// changed with [`set_thread_nice`]).
pub fn thread_nice() -> i32 {
    NICE.with(Cell::get)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clamped_and_per_thread() {
        assert_eq!(thread_nice(), 0);
        assert_eq!(set_thread_nice(-100), NICE_MIN);
        assert_eq!(set_thread_nice(i32::MAX), NICE_MAX);
        assert_eq!(set_thread_nice(5), 5);
        assert_eq!(thread_nice(), 5);
        assert_eq!(std::thread::spawn(thread_nice).join().unwrap(), 0);
    }
}

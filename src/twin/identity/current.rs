//! [`Credentials::current`]: the identity of the real process, read from
//! `/proc/self` on Linux.

// The parsers are Linux's; elsewhere only their unit tests use them.
#![cfg_attr(not(target_os = "linux"), allow(dead_code))]

use super::{Capabilities, Credentials};

/// Capability numbers in the `CapEff:` mask of `/proc/<pid>/status`.
const CAP_DAC_OVERRIDE: u32 = 1;
const CAP_FOWNER: u32 = 3;
const CAP_SYS_RESOURCE: u32 = 24;

impl Credentials {
    /// The identity of the real, calling process, as the kernel would apply
    /// it to a message-queue call: a twin created with it answers what the
    /// kernel answers this process.
    ///
    /// On Linux it reads `/proc/self/status` and `/proc/self/limits`:
    ///
    /// - `uid`, `gid`: the filesystem ids (the fourth field of `Uid:` and
    ///   `Gid:`; the effective ids unless `setfsuid` was called), which are
    ///   what the kernel checks and stamps on new queues;
    /// - `groups`: the supplementary groups (`Groups:`);
    /// - `umask`: the `Umask:` line (Linux 4.7 and later). On older kernels it
    ///   falls back to `umask(2)`, setting `0o022` and restoring the old value
    ///   at once; the umask is process-global, so a file or queue another
    ///   thread creates in that instant gets `0o022`;
    /// - `capabilities`: `CAP_SYS_RESOURCE`, `CAP_DAC_OVERRIDE` and
    ///   `CAP_FOWNER` from the effective set (`CapEff:`);
    /// - `rlimit_msgqueue`: the soft `RLIMIT_MSGQUEUE` (`Max msgqueue size`
    ///   in `/proc/self/limits`; `unlimited` is `u64::MAX`).
    ///
    /// Root in a container usually lacks `CAP_SYS_RESOURCE` (Docker and
    /// Kubernetes drop it by default), so this is what such a process gets,
    /// not [`Credentials::root`], which has every capability.
    ///
    /// ```
    /// # #[cfg(target_os = "linux")] {
    /// use mqtwin::twin::{Credentials, Twin};
    /// let me = Credentials::current()?;
    /// let twin = Twin::with_credentials(me.clone());
    /// assert_eq!(twin.credentials(), &me);
    /// # }
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// On Linux, when `/proc/self/status` or `/proc/self/limits` cannot be
    /// read (no `/proc` mounted) or lacks a field it needs
    /// ([`std::io::ErrorKind::InvalidData`]). On every other system it
    /// always fails with [`std::io::ErrorKind::Unsupported`]: the twin
    /// models Linux, there is no `/proc` to read capabilities and
    /// `RLIMIT_MSGQUEUE` from, and the crate has no `libc` dependency there.
    /// Build the identity you want to test with [`Credentials::user`] or
    /// [`Credentials::root`] instead.
    pub fn current() -> std::io::Result<Credentials> {
        #[cfg(target_os = "linux")]
        {
            let status = std::fs::read_to_string("/proc/self/status")?;
            let limits = std::fs::read_to_string("/proc/self/limits")?;
            let umask = match parse_umask(&status) {
                Some(m) => m,
                None => umask_set_and_restore(),
            };
            from_proc(&status, &limits, umask)
        }
        #[cfg(not(target_os = "linux"))]
        {
            Err(std::io::Error::new(
                std::io::ErrorKind::Unsupported,
                "Credentials::current() reads /proc/self and is only available on Linux",
            ))
        }
    }
}

impl Credentials {
    /// The identity of another process of this machine, `pid`, read from
    /// `/proc/<pid>/status` and `/proc/<pid>/limits` as
    /// [`Credentials::current`] reads its own (the remote server learns its
    /// clients' identities this way). The umask must be in `status`.
    #[cfg(all(target_os = "linux", feature = "remote"))]
    pub(crate) fn of_process(pid: u32) -> std::io::Result<Credentials> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        let limits = std::fs::read_to_string(format!("/proc/{pid}/limits"))?;
        let umask = parse_umask(&status).ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidData, "no Umask: line")
        })?;
        from_proc(&status, &limits, umask)
    }
}

/// The umask through `umask(2)`: set `0o022`, restore the old value.
#[cfg(target_os = "linux")]
fn umask_set_and_restore() -> u32 {
    use nix::sys::stat::{umask, Mode};
    let old = umask(Mode::from_bits_truncate(0o022));
    umask(old);
    old.bits()
}

/// The whitespace-separated fields of the line `key` of a `/proc` file.
fn fields<'a>(text: &'a str, key: &str) -> Option<Vec<&'a str>> {
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .map(|rest| rest.split_whitespace().collect())
}

/// The `Umask:` line of `/proc/<pid>/status` (octal).
fn parse_umask(status: &str) -> Option<u32> {
    u32::from_str_radix(fields(status, "Umask:")?.first()?, 8).ok()
}

/// The soft limit of `Max msgqueue size` in `/proc/<pid>/limits`.
fn parse_rlimit_msgqueue(limits: &str) -> Option<u64> {
    match *fields(limits, "Max msgqueue size")?.first()? {
        "unlimited" => Some(u64::MAX),
        soft => soft.parse().ok(),
    }
}

/// Credentials from the text of `/proc/<pid>/status` and
/// `/proc/<pid>/limits`, and the umask.
fn from_proc(status: &str, limits: &str, umask: u32) -> std::io::Result<Credentials> {
    let bad = |what: &str| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("no readable {what} line in /proc/self"),
        )
    };
    // "Uid: real effective saved filesystem".
    let fs_id = |key: &str| -> Option<u32> { fields(status, key)?.get(3)?.parse().ok() };
    let uid = fs_id("Uid:").ok_or_else(|| bad("Uid:"))?;
    let gid = fs_id("Gid:").ok_or_else(|| bad("Gid:"))?;
    let groups = fields(status, "Groups:")
        .ok_or_else(|| bad("Groups:"))?
        .iter()
        .map(|g| g.parse().map_err(|_| bad("Groups:")))
        .collect::<std::io::Result<Vec<u32>>>()?;
    let cap_eff = fields(status, "CapEff:")
        .and_then(|f| u64::from_str_radix(f.first()?, 16).ok())
        .ok_or_else(|| bad("CapEff:"))?;
    let has = |bit: u32| cap_eff & (1 << bit) != 0;
    let rlimit_msgqueue = parse_rlimit_msgqueue(limits).ok_or_else(|| bad("Max msgqueue size"))?;
    Ok(Credentials {
        uid,
        gid,
        groups,
        umask,
        capabilities: Capabilities {
            sys_resource: has(CAP_SYS_RESOURCE),
            dac_override: has(CAP_DAC_OVERRIDE),
            fowner: has(CAP_FOWNER),
        },
        rlimit_msgqueue,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Excerpts of a real `/proc/self/status` (a container's root without
    /// `CAP_SYS_RESOURCE`) and `/proc/self/limits`.
    const STATUS: &str = "Name:\tcat\nUmask:\t0027\nState:\tR (running)\n\
        Uid:\t0\t1\t2\t3\nGid:\t10\t11\t12\t13\nFDSize:\t64\nGroups:\t4 24 27 \n\
        CapInh:\t0000000000000000\nCapEff:\t000001fffeffffff\n";
    const LIMITS: &str =
        "Limit                     Soft Limit           Hard Limit           Units     \n\
        Max pending signals       127942               127942               signals   \n\
        Max msgqueue size         819200               1638400              bytes     \n\
        Max nice priority         0                    0                    \n";

    #[test]
    fn reads_the_filesystem_ids_groups_umask_caps_and_soft_rlimit() {
        let umask = parse_umask(STATUS).unwrap();
        assert_eq!(umask, 0o027);
        let c = from_proc(STATUS, LIMITS, umask).unwrap();
        assert_eq!(
            c,
            Credentials {
                uid: 3,
                gid: 13,
                groups: vec![4, 24, 27],
                umask: 0o027,
                capabilities: Capabilities::CONTAINER_ROOT,
                rlimit_msgqueue: 819_200,
            }
        );
    }

    #[test]
    fn an_ordinary_user_without_groups_and_an_unlimited_rlimit() {
        let status = "Uid:\t1000\t1000\t1000\t1000\nGid:\t100\t100\t100\t100\nGroups:\t\n\
            CapEff:\t0000000000000000\n";
        let limits = "Max msgqueue size         unlimited            unlimited            bytes\n";
        assert_eq!(parse_umask(status), None);
        let c = from_proc(status, limits, 0o022).unwrap();
        assert_eq!(
            c,
            Credentials {
                rlimit_msgqueue: u64::MAX,
                ..Credentials::user(1000, 100)
            }
        );
        let all = "Uid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\nGroups:\t0\nCapEff:\t000001ffffffffff\n";
        assert_eq!(
            from_proc(all, limits, 0o022).unwrap().capabilities,
            Capabilities::ALL
        );
    }

    #[test]
    fn a_missing_or_garbled_field_is_an_error_not_a_guess() {
        for status in [
            "Gid:\t0\t0\t0\t0\nGroups:\t\nCapEff:\t0\n",
            "Uid:\t0\t0\t0\nGid:\t0\t0\t0\t0\nGroups:\t\nCapEff:\t0\n",
            "Uid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\nGroups:\tx\nCapEff:\t0\n",
            "Uid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\nGroups:\t\n",
        ] {
            let e = from_proc(status, LIMITS, 0).unwrap_err();
            assert_eq!(e.kind(), std::io::ErrorKind::InvalidData, "{status:?}");
        }
        let ok = "Uid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\nGroups:\t\nCapEff:\t0\n";
        assert!(from_proc(ok, LIMITS, 0).is_ok());
        let e = from_proc(ok, "Max open files 1024 1024 files\n", 0).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidData);
    }

    #[cfg(not(target_os = "linux"))]
    #[test]
    fn unsupported_off_linux() {
        let e = Credentials::current().unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::Unsupported);
    }

    /// The real process, through the system calls rather than `/proc`.
    #[cfg(all(target_os = "linux", not(miri)))]
    #[test]
    fn current_matches_the_system_calls() {
        use nix::sys::resource::{getrlimit, Resource};
        use nix::unistd::{getegid, geteuid, getgroups};
        let c = Credentials::current().unwrap();
        assert_eq!(c.uid, geteuid().as_raw());
        assert_eq!(c.gid, getegid().as_raw());
        let mut want: Vec<u32> = getgroups().unwrap().iter().map(|g| g.as_raw()).collect();
        let mut got = c.groups.clone();
        want.sort_unstable();
        got.sort_unstable();
        assert_eq!(got, want);
        assert_eq!(c.umask, umask_set_and_restore());
        let (soft, _hard) = getrlimit(Resource::RLIMIT_MSGQUEUE).unwrap();
        assert_eq!(c.rlimit_msgqueue, soft);
    }
}

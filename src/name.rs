//! Queue-name rules, shared by both backends.
//!
//! Linux (glibc + the kernel's VFS lookup) accepts a name iff it is `/`
//! followed by 1 to 255 bytes that are neither `/` nor NUL, and the part after
//! the slash is not `.` or `..`. Everything else is fine: spaces, control
//! characters, invalid UTF-8. The checks run in the kernel's order, so the
//! first rule broken decides the error:
//!
//! 1. no leading `/` → `EINVAL` (glibc, before any syscall);
//! 2. nothing after the slash → `ENOENT` (`getname`);
//! 3. 4096 bytes or more after the slash → `ENAMETOOLONG` (`getname`);
//! 4. a `/` after the first byte, or `.` / `..` → `EACCES` (lookup), even when
//!    the name is also longer than 255 bytes;
//! 5. more than 255 bytes after the slash → `ENAMETOOLONG`.
//!
//! A NUL byte cannot reach the kernel at all; it is rejected with `EINVAL`
//! before step 2.
//!
//! Evidence: `docs/semantics.md` §Names, and the `name_rules_match_kernel`
//! probe in `tests/kernel_probe.rs`, which runs every rule through raw
//! `mq_open`/`mq_unlink` and compares errnos.

use crate::error::{Error, NameProblem};

/// Longest accepted name after the leading slash (`NAME_MAX`).
pub const NAME_MAX: usize = 255;

/// `getname` rejects a path of this many bytes or more before the lookup runs,
/// so such a name is `ENAMETOOLONG` even when it also holds an inner slash.
const PATH_MAX: usize = 4096;

/// Names longer than this many bytes are shortened in messages.
pub const SHOWN_BYTES: usize = 40;

/// How messages (this crate's errors, the `mqtwin` CLI) cut a long name:
/// its first [`SHOWN_BYTES`] bytes (at a character boundary) and, when it
/// was cut, its whole length in bytes.
///
/// ```
/// use mqtwin::name;
/// assert_eq!(name::shortened("/jobs"), ("/jobs", None));
/// let long = format!("/{}", "a".repeat(299));
/// assert_eq!(name::shortened(&long), (&long[..40], Some(300)));
/// ```
pub fn shortened(name: &str) -> (&str, Option<usize>) {
    if name.len() <= SHOWN_BYTES {
        return (name, None);
    }
    let mut end = SHOWN_BYTES;
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    (&name[..end], Some(name.len()))
}

/// Checks `name` against the Linux rules and returns the part after the slash.
///
/// # Errors
///
/// [`Error::InvalidName`] naming the first rule broken, in the kernel's order.
///
/// ```
/// use mqtwin::{name, Error, NameProblem};
/// assert_eq!(name::validate("/jobs"), Ok(&b"jobs"[..]));
/// assert_eq!(
///     name::validate("/a/b"),
///     Err(Error::InvalidName { name: "/a/b".into(), problem: NameProblem::InnerSlash })
/// );
/// ```
pub fn validate<N: AsRef<[u8]> + ?Sized>(name: &N) -> Result<&[u8], Error> {
    let bytes = name.as_ref();
    problem(bytes).map_or(Ok(&bytes[bytes.len().min(1)..]), |problem| {
        Err(Error::InvalidName {
            name: display(bytes),
            problem,
        })
    })
}

/// The first rule `name` breaks, if any.
fn problem(name: &[u8]) -> Option<NameProblem> {
    let Some((&b'/', comp)) = name.split_first() else {
        return Some(NameProblem::NoLeadingSlash);
    };
    if comp.contains(&0) {
        return Some(NameProblem::ContainsNul);
    }
    if comp.is_empty() {
        return Some(NameProblem::Empty);
    }
    if comp.len() >= PATH_MAX {
        return Some(NameProblem::TooLong);
    }
    if comp.contains(&b'/') {
        return Some(NameProblem::InnerSlash);
    }
    if comp == b"." || comp == b".." {
        return Some(NameProblem::DotOrDotDot);
    }
    if comp.len() > NAME_MAX {
        return Some(NameProblem::TooLong);
    }
    None
}

/// The name as it appears in error messages.
pub(crate) fn display(name: &[u8]) -> String {
    String::from_utf8_lossy(name).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(n: &[u8]) -> Option<NameProblem> {
        problem(n)
    }

    #[test]
    fn rules_in_kernel_order() {
        assert_eq!(p(b""), Some(NameProblem::NoLeadingSlash));
        assert_eq!(p(b"x"), Some(NameProblem::NoLeadingSlash));
        assert_eq!(p(b"/"), Some(NameProblem::Empty));
        assert_eq!(p(b"//x"), Some(NameProblem::InnerSlash));
        assert_eq!(p(b"/a/"), Some(NameProblem::InnerSlash));
        assert_eq!(p(b"/."), Some(NameProblem::DotOrDotDot));
        assert_eq!(p(b"/.."), Some(NameProblem::DotOrDotDot));
        assert_eq!(p(b"/..."), None);
        assert_eq!(p(b"/a\0b"), Some(NameProblem::ContainsNul));
        let mut long = vec![b'/'];
        long.extend(std::iter::repeat_n(b'x', 255));
        assert_eq!(p(&long), None);
        long.push(b'x');
        assert_eq!(p(&long), Some(NameProblem::TooLong));
        long[100] = b'/';
        assert_eq!(p(&long), Some(NameProblem::InnerSlash));
        assert_eq!(p(b"/\xff\x01 \n"), None);
        let mut huge = vec![b'/'; 1];
        huge.extend(std::iter::repeat_n(b'y', 4096));
        huge[10] = b'/';
        assert_eq!(p(&huge), Some(NameProblem::TooLong));
    }
}

//! Counts in words: "1 message", "2 messages", everywhere the tool prints one.

/// `n` followed by `noun`, with an `s` unless `n` is 1: `count(1, "byte")`
/// is `"1 byte"`, `count(0, "byte")` is `"0 bytes"`.
pub fn count(n: impl Into<u128>, noun: &str) -> String {
    let n = n.into();
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

#[cfg(test)]
mod tests {
    use super::count;

    #[test]
    fn one_is_singular_everything_else_plural() {
        assert_eq!(count(1u32, "message"), "1 message");
        assert_eq!(count(0u32, "message"), "0 messages");
        assert_eq!(count(2u64, "byte"), "2 bytes");
        assert_eq!(count(u64::MAX, "queue"), format!("{} queues", u64::MAX));
    }
}

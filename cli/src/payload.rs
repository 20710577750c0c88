//! Message payloads on the command line: parsing `send`'s argument and
//! printing what `receive` and `watch` got.

use std::fmt::Write as _;

/// How `receive` and `watch` print a payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Text when the payload is UTF-8 without control characters (tab
    /// excepted), hex otherwise.
    Auto,
    /// Always hex.
    Hex,
    /// Always text: invalid UTF-8 becomes U+FFFD, control characters are escaped.
    Text,
}

/// Parses a hex payload (`68656c6c6f`, spaces and an `0x` prefix allowed).
///
/// # Errors
///
/// A message naming the offending character or the odd digit count.
pub fn parse_hex(s: &str) -> Result<Vec<u8>, String> {
    let digits: Vec<char> = s
        .trim()
        .strip_prefix("0x")
        .unwrap_or(s.trim())
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    if digits.len() % 2 != 0 {
        return Err(format!(
            "hex payload has an odd number of digits ({})",
            digits.len()
        ));
    }
    digits
        .chunks(2)
        .map(|pair| {
            let hi = pair[0].to_digit(16);
            let lo = pair[1].to_digit(16);
            match (hi, lo) {
                (Some(hi), Some(lo)) => Ok((hi * 16 + lo) as u8),
                _ => Err(format!(
                    "hex payload contains {:?}, which is not a hex digit",
                    if hi.is_none() { pair[0] } else { pair[1] }
                )),
            }
        })
        .collect()
}

/// `bytes` as lowercase hex, no separators.
pub fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// `bytes` as text with control characters escaped (`\n`, `\u{1b}`).
fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// One received message as `receive` and `watch` print it:
/// `priority 5, 11 bytes, text: hello world`.
pub fn describe(priority: u32, bytes: &[u8], format: Format) -> String {
    let as_text = match format {
        Format::Hex => false,
        Format::Text => true,
        Format::Auto => std::str::from_utf8(bytes)
            .is_ok_and(|s| !s.chars().any(|c| c.is_control() && c != '\t')),
    };
    let (kind, shown) = if as_text {
        ("text", text(bytes))
    } else {
        ("hex", hex(bytes))
    };
    format!(
        "priority {priority}, {}, {kind}: {shown}",
        crate::words::count(bytes.len() as u64, "byte")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_and_rejects_garbage() {
        assert_eq!(parse_hex("00ff 10").unwrap(), vec![0, 255, 16]);
        assert_eq!(parse_hex("0xAB").unwrap(), vec![0xab]);
        assert_eq!(hex(&[0, 255, 16]), "00ff10");
        assert!(parse_hex("abc").unwrap_err().contains("odd number"));
        assert!(parse_hex("zz").unwrap_err().contains("'z'"));
        assert_eq!(parse_hex("").unwrap(), Vec::<u8>::new());
    }

    #[test]
    fn auto_picks_text_or_hex() {
        assert_eq!(
            describe(5, b"hello", Format::Auto),
            "priority 5, 5 bytes, text: hello"
        );
        assert_eq!(
            describe(0, &[0, 1], Format::Auto),
            "priority 0, 2 bytes, hex: 0001"
        );
        assert_eq!(
            describe(1, b"a\nb", Format::Text),
            "priority 1, 3 bytes, text: a\\nb"
        );
        assert_eq!(
            describe(1, b"A", Format::Hex),
            "priority 1, 1 byte, hex: 41"
        );
        assert_eq!(
            describe(2, b"", Format::Auto),
            "priority 2, 0 bytes, text: "
        );
    }
}

//! Queue names on the command line: checked while the arguments are parsed,
//! with the library's rules ([`mqtwin::name::validate`]), and shortened
//! whenever a message repeats them.

use std::ffi::OsStr;

use clap::builder::TypedValueParser;
use clap::error::ErrorKind;
use mqtwin::{Error, NameProblem};

/// A name as messages show it: control characters escaped, and when longer
/// than 40 bytes its first 40 (at a character boundary) followed by `…` and
/// its length, e.g. `/aaaa…(300 bytes)` (the library's rule,
/// [`mqtwin::name::shortened`]).
pub fn shown(name: &str) -> String {
    let (head, cut) = mqtwin::name::shortened(name);
    let mut s: String = head.chars().flat_map(char::escape_debug).collect();
    if let Some(len) = cut {
        s.push_str(&format!("…({len} bytes)"));
    }
    s
}

/// `name` as a queue name: a leading `/` is added when it has none, then the
/// library's name rules are checked.
///
/// # Errors
///
/// What is wrong with the name, in words; an empty name (`""` or `"/"`)
/// is "queue name is empty".
pub fn parse(name: &str) -> Result<String, String> {
    let full = if name.starts_with('/') {
        name.to_owned()
    } else {
        format!("/{name}")
    };
    match mqtwin::name::validate(&full) {
        Ok(_) => Ok(full),
        Err(Error::InvalidName {
            problem: NameProblem::Empty,
            ..
        }) if name.is_empty() => Err("queue name is empty".into()),
        Err(Error::InvalidName {
            problem: NameProblem::Empty,
            ..
        }) => Err("queue name is empty: \"/\" has nothing after the slash".into()),
        Err(Error::InvalidName { problem, .. }) => {
            Err(format!("invalid queue name {}: {problem}", shown(name)))
        }
        Err(other) => Err(format!("invalid queue name {}: {other}", shown(name))),
    }
}

/// The clap value parser of every `NAME` argument: [`parse`], with clap's
/// usage and help hint but without clap echoing the (possibly huge) value.
#[derive(Debug, Clone, Copy)]
pub struct QueueName;

impl TypedValueParser for QueueName {
    type Value = String;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        _arg: Option<&clap::Arg>,
        value: &OsStr,
    ) -> Result<String, clap::Error> {
        let why = match value.to_str() {
            Some(name) => match parse(name) {
                Ok(full) => return Ok(full),
                Err(why) => why,
            },
            None => format!(
                "invalid queue name {}: mqtwin takes UTF-8 names only",
                shown(&value.to_string_lossy())
            ),
        };
        Err(clap::Error::raw(ErrorKind::ValueValidation, why).format(&mut cmd.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_get_their_slash_and_the_library_rules() {
        assert_eq!(parse("jobs").unwrap(), "/jobs");
        assert_eq!(parse("/jobs").unwrap(), "/jobs");
        assert_eq!(parse("").unwrap_err(), "queue name is empty");
        assert!(parse("/").unwrap_err().starts_with("queue name is empty"));
        assert_eq!(
            parse("/a/b").unwrap_err(),
            "invalid queue name /a/b: it contains a '/' after the leading one"
        );
        assert!(parse("..").unwrap_err().contains("'.' and '..'"));
        assert!(parse(&"x".repeat(255)).is_ok());
        let e = parse(&"x".repeat(256)).unwrap_err();
        assert_eq!(
            e,
            format!(
                "invalid queue name {}…(256 bytes): it has more than 255 bytes after the leading '/'",
                "x".repeat(40)
            )
        );
    }

    #[test]
    fn long_names_are_shortened_at_a_character_boundary() {
        assert_eq!(shown("/short"), "/short");
        assert_eq!(shown("/a\nb"), "/a\\nb");
        let long = format!("/{}", "é".repeat(100));
        let s = shown(&long);
        assert!(s.ends_with("…(201 bytes)"), "{s}");
        assert!(s.len() < 60, "{s}");
    }
}

//! What libmqtwin reads from the environment, once, at its first call
//! (docs/capi.md lists every variable).

use std::ffi::OsString;

use mqtwin::Limits;

/// The backing the environment asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Backing {
    /// A twin inside this process (the default).
    InProcess {
        /// `fs.mqueue.*` of the twin namespace.
        limits: Limits,
        /// `MQTWIN_VIRTUAL_TIME=1`: a virtual clock starting at the real time.
        virtual_time: bool,
    },
    /// `MQTWIN_SOCKET=PATH`: the twin server at `PATH` (`mqtwin serve`).
    Remote(OsString),
}

/// A variable that does not parse: the whole library refuses to work
/// rather than run with limits the user did not ask for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BadVariable(pub(crate) String);

/// Reads the configuration through `get` (the process environment in the
/// library, a map in tests).
pub(crate) fn from_env(get: impl Fn(&str) -> Option<OsString>) -> Result<Backing, BadVariable> {
    if let Some(path) = get("MQTWIN_SOCKET").filter(|p| !p.is_empty()) {
        return Ok(Backing::Remote(path));
    }
    let mut limits = Limits::default();
    let number = |name: &str| -> Result<Option<i64>, BadVariable> {
        let Some(raw) = get(name) else {
            return Ok(None);
        };
        let text = raw.to_str().unwrap_or("");
        text.trim()
            .parse::<i64>()
            .map(Some)
            .map_err(|_| BadVariable(format!("{name}={raw:?} is not an integer")))
    };
    let size = |name: &str| -> Result<Option<usize>, BadVariable> {
        match number(name)? {
            None => Ok(None),
            Some(v) => usize::try_from(v)
                .map(Some)
                .map_err(|_| BadVariable(format!("{name}={v} is negative"))),
        }
    };
    if let Some(v) = number("MQTWIN_QUEUES_MAX")? {
        limits.queues_max = v;
    }
    if let Some(v) = size("MQTWIN_MSG_MAX")? {
        limits.msg_max = v;
    }
    if let Some(v) = size("MQTWIN_MSGSIZE_MAX")? {
        limits.msgsize_max = v;
    }
    if let Some(v) = size("MQTWIN_MSG_DEFAULT")? {
        limits.msg_default = v;
    }
    if let Some(v) = size("MQTWIN_MSGSIZE_DEFAULT")? {
        limits.msgsize_default = v;
    }
    limits
        .validate()
        .map_err(|e| BadVariable(format!("the MQTWIN_* limits are refused: {e}")))?;
    let virtual_time = match get("MQTWIN_VIRTUAL_TIME") {
        None => false,
        Some(v) if v == "0" || v.is_empty() => false,
        Some(v) if v == "1" => true,
        Some(v) => {
            return Err(BadVariable(format!(
                "MQTWIN_VIRTUAL_TIME={v:?}: expected 1 or 0"
            )))
        }
    };
    Ok(Backing::InProcess {
        limits,
        virtual_time,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn read(vars: &[(&str, &str)]) -> Result<Backing, BadVariable> {
        let map: HashMap<String, OsString> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), OsString::from(v)))
            .collect();
        from_env(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_limits_socket_and_bad_values() {
        assert_eq!(
            read(&[]),
            Ok(Backing::InProcess {
                limits: Limits::default(),
                virtual_time: false
            })
        );
        let Ok(Backing::InProcess {
            limits,
            virtual_time,
        }) = read(&[
            ("MQTWIN_MSG_MAX", "20"),
            ("MQTWIN_MSGSIZE_MAX", "1000"),
            ("MQTWIN_QUEUES_MAX", "3"),
            ("MQTWIN_MSG_DEFAULT", "5"),
            ("MQTWIN_MSGSIZE_DEFAULT", "500"),
            ("MQTWIN_VIRTUAL_TIME", "1"),
        ])
        else {
            panic!("valid variables refused")
        };
        assert_eq!(
            (limits.msg_max, limits.msgsize_max, limits.queues_max),
            (20, 1000, 3)
        );
        assert_eq!((limits.msg_default, limits.msgsize_default), (5, 500));
        assert!(virtual_time);
        assert_eq!(
            read(&[("MQTWIN_SOCKET", "/tmp/s")]),
            Ok(Backing::Remote("/tmp/s".into()))
        );
        assert!(read(&[("MQTWIN_MSG_MAX", "ten")]).is_err());
        assert!(read(&[("MQTWIN_MSG_MAX", "-1")]).is_err());
        assert!(read(&[("MQTWIN_MSG_MAX", "0")]).is_err());
        assert!(read(&[("MQTWIN_VIRTUAL_TIME", "yes")]).is_err());
        // The kernel's sysctl ranges (Limits::validate): msgsize_max >= 128.
        assert!(read(&[("MQTWIN_MSGSIZE_MAX", "100")]).is_err());
    }
}

//! Name rules and their exact errors (semantics.md §Names).

use mqtwin::{Error, NameProblem, Namespace, OpenOptions};

use crate::harness::Harness;

fn bad(name: &str, problem: NameProblem) -> Error {
    Error::InvalidName {
        name: name.into(),
        problem,
    }
}

fn open_and_unlink_reject_bad_names<H: Harness>(h: &H) {
    let long = format!("/{}", "x".repeat(256));
    let long_slash = format!("/{}/{}", "x".repeat(150), "y".repeat(150));
    let huge = format!("/{}/", "z".repeat(5000));
    let cases: Vec<(&str, NameProblem)> = vec![
        ("", NameProblem::NoLeadingSlash),
        ("noslash", NameProblem::NoLeadingSlash),
        ("/", NameProblem::Empty),
        ("//x", NameProblem::InnerSlash),
        ("/a/b", NameProblem::InnerSlash),
        ("/a/", NameProblem::InnerSlash),
        ("/.", NameProblem::DotOrDotDot),
        ("/..", NameProblem::DotOrDotDot),
        (&long, NameProblem::TooLong),
        (&long_slash, NameProblem::InnerSlash),
        (&huge, NameProblem::TooLong),
        ("/nul\0inside", NameProblem::ContainsNul),
    ];
    for (name, problem) in cases {
        for opts in [
            OpenOptions::read_write(),
            OpenOptions::read_write().create(),
        ] {
            assert_eq!(
                h.ns().open(name, &opts).err(),
                Some(bad(name, problem)),
                "open {name:?}"
            );
        }
        assert_eq!(
            h.ns().unlink(name),
            Err(bad(name, problem)),
            "unlink {name:?}"
        );
    }
}

fn unusual_bytes_and_limits_are_valid<H: Harness>(h: &H) {
    let base = h.name("odd");
    let pad = 255 - (base.len() - 1);
    for name in [
        format!("{base}..."),
        format!("{base} sp\n\t\u{1}\u{7f}é"),
        format!("{base}{}", "y".repeat(pad)),
    ] {
        let name = name.as_str();
        // Register for cleanup through the harness's own list by unlinking at the end.
        let q = h.ns().open(name, &OpenOptions::read_write().create_new());
        assert!(q.is_ok(), "{name:?}: {q:?}");
        assert_eq!(h.ns().unlink(name), Ok(()));
        assert_eq!(
            h.ns().unlink(name),
            Err(Error::NotFound { name: name.into() })
        );
    }
}

fn names_are_case_sensitive<H: Harness>(h: &H) {
    let upper = h.name("CASE");
    let lower = upper.replace("CASE", "case");
    h.ns()
        .open(&upper, &OpenOptions::read_write().create_new())
        .unwrap();
    assert_eq!(
        h.ns().open(&lower, &OpenOptions::read_write()).err(),
        Some(Error::NotFound {
            name: lower.clone()
        })
    );
}

crate::instantiate!(
    open_and_unlink_reject_bad_names,
    unusual_bytes_and_limits_are_valid,
    names_are_case_sensitive
);

//! Which seeds a test tries: [`seeds`], and the environment variables that
//! replay one seed or spread a sweep over many machines.

use std::fmt;
use std::ops::Range;

/// The seeds a test should try.
///
/// By default, `default`. The environment can change that, so a failing
/// seed replays alone and a long sweep spreads over many machines with no
/// coordination:
///
/// | variable | effect |
/// |---|---|
/// | `MQTWIN_SEED=s` | only `s` (replay one failing seed); overrides the two below |
/// | `MQTWIN_SEEDS=a..b` (or `a..=b`) | the range instead of `default` |
/// | `MQTWIN_SEED_SHARD=k/n` | only every `n`-th seed, starting with the `k`-th (`1 ≤ k ≤ n`): shard `k` of `n` |
///
/// Seeds are decimal, or hex with `0x`. The `n` shards of a list are
/// disjoint and together hold every seed, whatever the list; a shard of a
/// range costs nothing per skipped seed, so `MQTWIN_SEEDS=0..1000000000000`
/// is fine. A value that does not parse is reported on stderr (one line)
/// and ignored, so the test still runs every seed it would run without it.
///
/// ```
/// for seed in mqtwin::twin::seeds(0..3) {
///     let ns = mqtwin::twin::Twin::builder().deterministic(seed).build();
///     # let _ = ns;
/// }
/// ```
///
/// Eight CI machines sweeping a million seeds of every test:
///
/// ```text
/// MQTWIN_SEEDS=0..1000000 MQTWIN_SEED_SHARD=3/8 cargo test --release -- sweep
/// ```
pub fn seeds<'a, I>(default: I) -> Seeds<'a>
where
    I: IntoIterator<Item = u64>,
    I::IntoIter: 'a,
{
    let var = |name| std::env::var(name).ok();
    Seeds::from_env(
        default,
        var("MQTWIN_SEED").as_deref(),
        var("MQTWIN_SEEDS").as_deref(),
        var("MQTWIN_SEED_SHARD").as_deref(),
        &mut |line| eprintln!("{line}"),
    )
}

/// The seeds chosen by [`seeds`]: an iterator, so a huge range is never
/// stored. `'a` is the lifetime of the default list's iterator.
pub struct Seeds<'a>(Box<dyn Iterator<Item = u64> + 'a>);

impl fmt::Debug for Seeds<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Seeds")
            .field("left", &self.0.size_hint())
            .finish()
    }
}

impl Iterator for Seeds<'_> {
    type Item = u64;

    fn next(&mut self) -> Option<u64> {
        self.0.next()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }

    fn nth(&mut self, n: usize) -> Option<u64> {
        self.0.nth(n)
    }
}

impl<'a> Seeds<'a> {
    /// [`seeds`] with the variables' values given (`None`: unset); `warn`
    /// takes each line to report.
    fn from_env<I>(
        default: I,
        seed: Option<&str>,
        range: Option<&str>,
        shard: Option<&str>,
        warn: &mut dyn FnMut(String),
    ) -> Seeds<'a>
    where
        I: IntoIterator<Item = u64>,
        I::IntoIter: 'a,
    {
        if let Some(s) = seed {
            match parse_seed(s) {
                Some(s) => return Seeds(Box::new(std::iter::once(s))),
                None => warn(format!(
                    "mqtwin: MQTWIN_SEED={s:?} ignored: not a u64 (decimal, or hex with 0x)"
                )),
            }
        }
        let list: Box<dyn Iterator<Item = u64> + 'a> = match range.map(|r| (r, parse_range(r))) {
            Some((_, Some(r))) => r,
            Some((r, None)) => {
                warn(format!(
                    "mqtwin: MQTWIN_SEEDS={r:?} ignored: not a range `a..b` or `a..=b` of u64s"
                ));
                Box::new(default.into_iter())
            }
            None => Box::new(default.into_iter()),
        };
        match shard.map(|s| (s, parse_shard(s))) {
            Some((_, Some((k, n)))) => Seeds(Box::new(list.skip(k - 1).step_by(n))),
            Some((s, None)) => {
                warn(format!(
                    "mqtwin: MQTWIN_SEED_SHARD={s:?} ignored: not `k/n` with 1 <= k <= n \
                     (every seed runs)"
                ));
                Seeds(list)
            }
            None => Seeds(list),
        }
    }
}

/// `MQTWIN_SEED`, parsed (decimal, or hex with `0x`).
/// A value that does not parse is reported on stderr and ignored.
pub(crate) fn env_seed() -> Option<u64> {
    let v = std::env::var("MQTWIN_SEED").ok()?;
    let seed = parse_seed(&v);
    if seed.is_none() {
        eprintln!("mqtwin: MQTWIN_SEED={v:?} ignored: not a u64 (decimal, or hex with 0x)");
    }
    seed
}

fn parse_seed(s: &str) -> Option<u64> {
    let s = s.trim();
    match s.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    }
}

/// `a..b` or `a..=b`; an empty range is a valid (empty) list.
fn parse_range(s: &str) -> Option<Box<dyn Iterator<Item = u64>>> {
    let (a, b) = s.split_once("..")?;
    let start = parse_seed(a)?;
    Some(match b.strip_prefix('=') {
        Some(end) => Box::new(start..=parse_seed(end)?),
        None => Box::new(Range {
            start,
            end: parse_seed(b)?,
        }),
    })
}

/// `k/n` with `1 <= k <= n`, as `(k, n)`.
fn parse_shard(s: &str) -> Option<(usize, usize)> {
    let (k, n) = s.trim().split_once('/')?;
    let (k, n): (usize, usize) = (k.trim().parse().ok()?, n.trim().parse().ok()?);
    (1..=n).contains(&k).then_some((k, n))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chosen(
        default: Vec<u64>,
        seed: Option<&str>,
        range: Option<&str>,
        shard: Option<&str>,
    ) -> (Vec<u64>, Vec<String>) {
        let mut warned = Vec::new();
        let s = Seeds::from_env(default, seed, range, shard, &mut |l| warned.push(l));
        (s.take(1000).collect(), warned)
    }

    #[test]
    fn seeds_parse() {
        assert_eq!(parse_seed(" 42 "), Some(42));
        assert_eq!(parse_seed("0xff"), Some(255));
        assert_eq!(parse_seed("x"), None);
    }

    #[test]
    fn default_seed_and_range() {
        assert_eq!(chosen(vec![5, 6], None, None, None), (vec![5, 6], vec![]));
        assert_eq!(
            chosen(vec![5, 6], Some("9"), Some("0..3"), Some("1/2")).0,
            [9]
        );
        assert_eq!(chosen(vec![5], None, Some("2..5"), None).0, [2, 3, 4]);
        assert_eq!(
            chosen(vec![5], None, Some("0x10..=0x12"), None).0,
            [16, 17, 18]
        );
        assert_eq!(
            chosen(vec![5], None, Some("7..7"), None).0,
            Vec::<u64>::new()
        );
    }

    #[test]
    fn shards_are_disjoint_and_cover_the_list() {
        let default: Vec<u64> = vec![3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5];
        for n in 1..=12 {
            let mut all = Vec::new();
            for k in 1..=n {
                let (part, warned) = chosen(default.clone(), None, None, Some(&format!("{k}/{n}")));
                assert!(warned.is_empty());
                all.extend(part);
            }
            let (mut a, mut b) = (all, default.clone());
            a.sort_unstable();
            b.sort_unstable();
            assert_eq!(a, b, "n = {n}");
        }
        assert_eq!(
            chosen(vec![], None, Some("0..10"), Some("2/3")).0,
            [1, 4, 7]
        );
    }

    #[test]
    fn a_huge_range_is_never_stored() {
        let mut s = Seeds::from_env(
            Vec::new(),
            None,
            Some("0..18446744073709551615"),
            Some("1000/1000"),
            &mut |l| panic!("{l}"),
        );
        assert_eq!(s.next(), Some(999));
        assert_eq!(s.nth(1_000_000_000), Some(999 + 1_000_000_001 * 1000));
    }

    #[test]
    fn bad_values_are_reported_and_ignored() {
        for (seed, range, shard) in [
            (Some("x"), None, None),
            (None, Some("1-5"), None),
            (None, Some("5..x"), None),
            (None, None, Some("0/3")),
            (None, None, Some("4/3")),
            (None, None, Some("1/0")),
            (None, None, Some("two/3")),
        ] {
            let (got, warned) = chosen(vec![1, 2], seed, range, shard);
            assert_eq!(got, [1, 2], "{seed:?} {range:?} {shard:?}");
            assert_eq!(warned.len(), 1, "{warned:?}");
            assert!(warned[0].starts_with("mqtwin: MQTWIN_SEED"), "{warned:?}");
        }
    }
}

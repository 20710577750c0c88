//! How a deterministic run picks the next participant: a seeded random
//! choice, PCT (random priorities with change points), or a recorded
//! [`Schedule`] replayed decision by decision.

use std::fmt;
use std::path::Path;

/// The scheduling strategy of a deterministic twin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Strategy {
    /// At every scheduling point, any runnable participant, uniformly at
    /// random (from the seed).
    Random,
    /// PCT (Burckhardt et al., *A Randomized Scheduler with Probabilistic
    /// Guarantees of Finding Bugs*, ASPLOS 2010): each participant gets a
    /// random priority when spawned and the highest-priority runnable one
    /// runs; at `depth - 1` distinct random steps among the first `steps`
    /// decisions (all of them if `depth - 1 >= steps`) the running
    /// participant drops below every other. Finds a bug of depth `depth`
    /// with probability at least `1 / (n * steps^(depth-1))` per run.
    ///
    /// Any values are accepted: `depth` 0 counts as 1 and `steps` 0 means
    /// no change points. The change points are drawn one decision at a
    /// time as the run reaches them (selection sampling), so memory and the
    /// cost of a pick do not grow with `depth` or `steps`:
    /// `Pct { depth: u32::MAX, steps: u64::MAX }` is as cheap as `depth: 3`.
    ///
    /// ```
    /// use mqtwin::twin::{Strategy, Twin};
    /// let pct = Strategy::Pct { depth: u32::MAX, steps: u64::MAX };
    /// let ns = Twin::builder().deterministic(7).strategy(pct).build();
    /// let sim = ns.sim().expect("deterministic");
    /// assert_eq!(sim.spawn(|| 1 + 1).join().unwrap(), 2);
    /// ```
    Pct {
        /// The bug depth aimed at (1 means no change points).
        depth: u32,
        /// An estimate of the number of scheduling decisions in a run.
        steps: u64,
    },
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Strategy::Random => write!(f, "random"),
            Strategy::Pct { depth, steps } => write!(f, "pct {depth} {steps}"),
        }
    }
}

impl Strategy {
    fn parse(s: &str) -> Option<Self> {
        let mut w = s.split_whitespace();
        match w.next()? {
            "random" => Some(Strategy::Random),
            "pct" => Some(Strategy::Pct {
                depth: w.next()?.parse().ok()?,
                steps: w.next()?.parse().ok()?,
            }),
            _ => None,
        }
    }
}

/// The scheduling decisions of one deterministic run: the seed, the
/// strategy and, for every scheduling point, the participant that ran next.
/// Saved by [`Sim::save_schedule`](super::Sim::save_schedule) (and written
/// automatically when a run fails); replayed with
/// [`TwinBuilder::replay`](crate::twin::TwinBuilder::replay) or the
/// `MQTWIN_SCHEDULE` environment variable.
///
/// The file is text: a header line, `seed N`, `strategy ...` and
/// `decisions` followed by participant numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    /// The seed of the recorded run.
    pub seed: u64,
    /// Its strategy (used again if a replay runs past the recorded decisions).
    pub strategy: Strategy,
    /// The participant picked at each scheduling point, in order.
    pub decisions: Vec<u32>,
}

const HEADER: &str = "mqtwin schedule v1";

impl Schedule {
    /// The schedule as the text [`save`](Schedule::save) writes.
    pub fn to_text(&self) -> String {
        let mut s = format!(
            "{HEADER}\nseed {}\nstrategy {}\ndecisions",
            self.seed, self.strategy
        );
        for (i, d) in self.decisions.iter().enumerate() {
            s.push(if i % 32 == 0 { '\n' } else { ' ' });
            s.push_str(&d.to_string());
        }
        s.push('\n');
        s
    }

    /// Parses [`to_text`](Schedule::to_text)'s output; `None` if malformed.
    pub fn from_text(text: &str) -> Option<Schedule> {
        let mut lines = text.lines();
        if lines.next()?.trim() != HEADER {
            return None;
        }
        let seed = lines.next()?.trim().strip_prefix("seed ")?.parse().ok()?;
        let strategy = Strategy::parse(lines.next()?.trim().strip_prefix("strategy ")?)?;
        if lines.next()?.trim() != "decisions" {
            return None;
        }
        let decisions = lines
            .flat_map(str::split_whitespace)
            .map(str::parse)
            .collect::<Result<_, _>>()
            .ok()?;
        Some(Schedule {
            seed,
            strategy,
            decisions,
        })
    }

    /// Writes the schedule to `path`.
    ///
    /// # Errors
    ///
    /// Any I/O error from writing the file.
    pub fn save(&self, path: impl AsRef<Path>) -> std::io::Result<()> {
        std::fs::write(path, self.to_text())
    }

    /// Reads a schedule written by [`save`](Schedule::save).
    ///
    /// # Errors
    ///
    /// Any I/O error from reading the file, or `InvalidData` when it is not
    /// a schedule.
    pub fn load(path: impl AsRef<Path>) -> std::io::Result<Schedule> {
        let text = std::fs::read_to_string(path)?;
        Schedule::from_text(&text).ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidData, "not an mqtwin schedule")
        })
    }
}

/// splitmix64, as the fault plan uses: small, fast, the same everywhere.
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number below `n` (`n > 0`).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// PCT's change points: `depth - 1` distinct decisions out of the first
/// `steps`, chosen by selection sampling (Knuth's Algorithm S) as the run
/// reaches each decision, so only a few counters are kept whatever `depth`
/// and `steps` are. Decision `s` is asked about once, in order.
#[derive(Debug)]
struct ChangePoints {
    rng: Rng,
    /// Change points not placed yet.
    left: u64,
    /// Decisions not yet considered among the first `steps`.
    unseen: u64,
    /// The priority the next change point gives (falls by one each time, so
    /// a later drop goes below an earlier one, as in the paper).
    next_low: u64,
    /// The last decision asked about.
    last: u64,
}

impl ChangePoints {
    fn new(seed: u64, depth: u32, steps: u64) -> Self {
        let left = u64::from(depth.saturating_sub(1)).min(steps);
        ChangePoints {
            // Its own stream, so priorities drawn for new participants do
            // not depend on how many decisions were made before.
            rng: Rng::new(seed ^ 0xC4A9_6E5D_0F3B_2817),
            left,
            unseen: steps,
            next_low: left,
            last: 0,
        }
    }

    /// Whether decision `step` (1, 2, ... in order) is a change point, and
    /// if so the low priority it gives the running participant.
    fn at(&mut self, step: u64) -> Option<u64> {
        if step <= self.last || self.left == 0 || self.unseen == 0 {
            return None;
        }
        self.last = step;
        // Selection sampling: take this decision with probability
        // left / unseen, which places exactly `left` points uniformly.
        let take = self.rng.below(self.unseen) < self.left;
        self.unseen -= 1;
        if !take {
            return None;
        }
        self.left -= 1;
        let low = self.next_low.max(1);
        self.next_low = self.next_low.saturating_sub(1);
        Some(low)
    }
}

/// A strategy in action.
#[derive(Debug)]
pub(crate) struct Picker {
    pub(crate) seed: u64,
    pub(crate) strategy: Strategy,
    rng: Rng,
    /// PCT: each participant's priority (higher runs first).
    priorities: Vec<u64>,
    /// PCT: the change points still to place, drawn as decisions come.
    change_points: ChangePoints,
    /// Decisions made so far.
    pub(crate) decisions: Vec<u32>,
    /// Decisions to replay, and whether a replay diverged.
    replay: Option<Vec<u32>>,
    pub(crate) diverged: bool,
}

impl Picker {
    pub(crate) fn new(seed: u64, strategy: Strategy, replay: Option<Vec<u32>>) -> Self {
        let rng = Rng::new(seed);
        let change_points = match strategy {
            Strategy::Random => ChangePoints::new(seed, 0, 0),
            Strategy::Pct { depth, steps } => ChangePoints::new(seed, depth, steps),
        };
        Picker {
            seed,
            strategy,
            rng,
            priorities: Vec::new(),
            change_points,
            decisions: Vec::new(),
            replay,
            diverged: false,
        }
    }

    /// A participant was added (PCT gives it a random priority above every
    /// change-point priority).
    pub(crate) fn added(&mut self) {
        if let Strategy::Pct { depth, .. } = self.strategy {
            let p = u64::from(depth) + 1 + (self.rng.next() >> 1);
            self.priorities.push(p);
        }
    }

    /// Picks one of `runnable` (participant ids, ascending, not empty);
    /// `running` is the participant that held the token, if any.
    pub(crate) fn pick(&mut self, runnable: &[usize], running: Option<usize>) -> usize {
        let step = self.decisions.len() as u64 + 1;
        let recorded = self
            .replay
            .as_ref()
            .and_then(|r| r.get(self.decisions.len()).copied());
        // Every decision is offered to the change points, replayed or not,
        // so a replay that runs past its record continues the same draw.
        let drop_to = self.change_points.at(step);
        let chosen = match recorded {
            Some(r) if runnable.contains(&(r as usize)) => r as usize,
            other => {
                if other.is_some() {
                    self.diverged = true;
                }
                self.choose(runnable, running, drop_to)
            }
        };
        self.decisions.push(chosen as u32);
        chosen
    }

    fn choose(
        &mut self,
        runnable: &[usize],
        running: Option<usize>,
        drop_to: Option<u64>,
    ) -> usize {
        match self.strategy {
            Strategy::Random => {
                if runnable.len() == 1 {
                    runnable[0]
                } else {
                    runnable[self.rng.below(runnable.len() as u64) as usize]
                }
            }
            Strategy::Pct { .. } => {
                if let (Some(low), Some(r)) = (drop_to, running) {
                    if let Some(p) = self.priorities.get_mut(r) {
                        *p = low;
                    }
                }
                let prio = |id: &usize| self.priorities.get(*id).copied().unwrap_or(0);
                // Highest priority; the lowest id among equals.
                *runnable
                    .iter()
                    .max_by(|a, b| prio(a).cmp(&prio(b)).then(b.cmp(a)))
                    .unwrap_or(&runnable[0])
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_text_round_trips() {
        for strategy in [
            Strategy::Random,
            Strategy::Pct {
                depth: 3,
                steps: 90,
            },
        ] {
            let s = Schedule {
                seed: u64::MAX,
                strategy,
                decisions: (0..100).map(|i| i % 7).collect(),
            };
            assert_eq!(Schedule::from_text(&s.to_text()), Some(s));
        }
        assert_eq!(Schedule::from_text("seed 1"), None);
        assert_eq!(Schedule::from_text(&format!("{HEADER}\nseed x\n")), None);
    }

    #[test]
    fn replay_follows_the_record_then_the_strategy() {
        let mut p = Picker::new(1, Strategy::Random, Some(vec![2, 0, 9]));
        assert_eq!(p.pick(&[0, 1, 2], None), 2);
        assert_eq!(p.pick(&[0, 1], Some(2)), 0);
        assert!(!p.diverged);
        let third = p.pick(&[0, 1], Some(0)); // 9 is not runnable: diverged
        assert!(p.diverged && third < 2);
    }

    #[test]
    fn pct_places_exactly_depth_minus_one_distinct_change_points() {
        for (depth, steps, want) in [(1, 50, 0), (4, 50, 3), (60, 50, 50), (9, 0, 0)] {
            for seed in 0..20 {
                let mut c = ChangePoints::new(seed, depth, steps);
                let got = (1..=steps + 10).filter(|&s| c.at(s).is_some()).count();
                assert_eq!(got as u64, want, "depth {depth} steps {steps} seed {seed}");
            }
        }
        // Later change points drop lower: 3, 2, 1.
        let mut c = ChangePoints::new(1, 4, 10);
        let lows: Vec<u64> = (1..=10).filter_map(|s| c.at(s)).collect();
        assert_eq!(lows, [3, 2, 1]);
    }

    #[test]
    fn pct_change_points_are_uniform_over_the_steps() {
        // 2,000 runs of depth 2 over 8 steps: each step is the change point
        // about 250 times.
        let mut hits = [0u32; 8];
        for seed in 0..2_000 {
            let mut c = ChangePoints::new(seed, 2, 8);
            for s in 1..=8 {
                if c.at(s).is_some() {
                    hits[s as usize - 1] += 1;
                }
            }
        }
        assert!(hits.iter().all(|&h| (150..350).contains(&h)), "{hits:?}");
    }

    #[test]
    fn huge_pct_depth_and_steps_cost_nothing_up_front() {
        // Used to allocate depth - 1 change points (34 GB for u32::MAX) in
        // `new` and scan them on every pick.
        let huge = Strategy::Pct {
            depth: u32::MAX,
            steps: u64::MAX,
        };
        let mut p = Picker::new(3, huge, None);
        for _ in 0..4 {
            p.added();
        }
        let mut running = None;
        for _ in 0..100_000 {
            running = Some(p.pick(&[0, 1, 2, 3], running));
        }
        assert_eq!(p.decisions.len(), 100_000);
        // The same through a schedule file's text.
        let text = format!(
            "{HEADER}\nseed 1\nstrategy pct {} {}\ndecisions\n",
            u32::MAX,
            u64::MAX
        );
        let s = Schedule::from_text(&text).expect("parses");
        assert_eq!(s.strategy, huge);
        let mut p = Picker::new(s.seed, s.strategy, Some(s.decisions));
        p.added();
        assert_eq!(p.pick(&[0], None), 0);
    }

    #[test]
    fn pct_runs_the_highest_priority_until_a_change_point() {
        let mut p = Picker::new(
            5,
            Strategy::Pct {
                depth: 1,
                steps: 10,
            },
            None,
        );
        for _ in 0..3 {
            p.added();
        }
        let first = p.pick(&[0, 1, 2], None);
        for _ in 0..20 {
            assert_eq!(p.pick(&[0, 1, 2], Some(first)), first);
        }
    }
}

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
    /// runs; at `depth - 1` random steps among the first `steps` decisions
    /// the running participant drops below every other. Finds a bug of depth
    /// `depth` with probability at least `1 / (n * steps^(depth-1))` per run.
    Pct {
        /// The bug depth aimed at (at least 1; 1 means no change points).
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

/// A strategy in action.
#[derive(Debug)]
pub(crate) struct Picker {
    pub(crate) seed: u64,
    pub(crate) strategy: Strategy,
    rng: Rng,
    /// PCT: each participant's priority (higher runs first).
    priorities: Vec<u64>,
    /// PCT: the decision numbers at which the running participant drops.
    change_points: Vec<u64>,
    /// Decisions made so far.
    pub(crate) decisions: Vec<u32>,
    /// Decisions to replay, and whether a replay diverged.
    replay: Option<Vec<u32>>,
    pub(crate) diverged: bool,
}

impl Picker {
    pub(crate) fn new(seed: u64, strategy: Strategy, replay: Option<Vec<u32>>) -> Self {
        let mut rng = Rng::new(seed);
        let change_points = match strategy {
            Strategy::Random => Vec::new(),
            Strategy::Pct { depth, steps } => (1..depth.max(1))
                .map(|_| 1 + rng.below(steps.max(1)))
                .collect(),
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
        let chosen = match recorded {
            Some(r) if runnable.contains(&(r as usize)) => r as usize,
            other => {
                if other.is_some() {
                    self.diverged = true;
                }
                self.choose(runnable, running, step)
            }
        };
        self.decisions.push(chosen as u32);
        chosen
    }

    fn choose(&mut self, runnable: &[usize], running: Option<usize>, step: u64) -> usize {
        match self.strategy {
            Strategy::Random => {
                if runnable.len() == 1 {
                    runnable[0]
                } else {
                    runnable[self.rng.below(runnable.len() as u64) as usize]
                }
            }
            Strategy::Pct { .. } => {
                if let (Some(i), Some(r)) =
                    (self.change_points.iter().position(|&c| c == step), running)
                {
                    if let Some(p) = self.priorities.get_mut(r) {
                        *p = i as u64 + 1;
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

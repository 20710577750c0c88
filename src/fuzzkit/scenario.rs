//! [`Scenario`]: what the kit decodes from the fuzzer's bytes.

use std::time::Duration;

use arbitrary::Unstructured;

use crate::twin::FaultPlan;

/// The largest injected-fault probability the kit decodes (per site).
const MAX_FAULT_P: f64 = 0.25;

/// The most clients a scenario has: [`Scenario::decode`] and
/// [`Kit::max_clients`](super::Kit::max_clients) clamp to it, and
/// [`Kit::run_scenario`](super::Kit::run_scenario) refuses more (each
/// client is a participant thread).
pub const MAX_CLIENTS: usize = 64;

/// The most events per client [`Scenario::decode`] and
/// [`Kit::max_events`](super::Kit::max_events) allow.
pub const MAX_EVENTS: usize = 4096;

/// One step of a simulated client (peer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// One request: [`Client::request`](super::Client::request) decodes it
    /// from these bytes (message, size, priority: the model's choice).
    Request(Vec<u8>),
    /// The client waits this long, in virtual time, before its next event.
    Wait(Duration),
    /// The client drops its handles and connects again
    /// ([`Client::connect`](super::Client::connect)).
    Restart,
    /// The client drops its handles and leaves for good.
    Stop,
}

/// A decoded fuzz input: the scheduler's seed, the fault plan and each
/// client's script. Its `Debug` form is printed with every violation.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    /// The deterministic scheduler's seed.
    pub seed: u64,
    /// The injected faults (seeded, probabilities at most 0.25).
    pub faults: FaultPlan,
    /// One script per client.
    pub clients: Vec<Vec<Event>>,
}

impl Scenario {
    /// Decodes `bytes` into 1 to `max_clients` clients of at most
    /// `max_events` events each (`open_faults`: the plan also fails opens).
    /// Never fails and takes any values: missing bytes read as zeros (one
    /// client, no faults, no events); `max_clients` is clamped to
    /// `1..=`[`MAX_CLIENTS`], `max_events` to at most [`MAX_EVENTS`] (0: no
    /// events, each client only connects).
    pub fn decode(bytes: &[u8], max_clients: usize, max_events: usize, open_faults: bool) -> Self {
        let max_clients = max_clients.clamp(1, MAX_CLIENTS);
        let max_events = max_events.min(MAX_EVENTS);
        let mut u = Unstructured::new(bytes);
        let seed = u.arbitrary::<u64>().unwrap_or(0);
        let fault_seed = u.arbitrary::<u64>().unwrap_or(0);
        let mut p = || f64::from(u.arbitrary::<u8>().unwrap_or(0)) / 255.0 * MAX_FAULT_P;
        let mut faults = FaultPlan::new(fault_seed).send(p()).interrupt(p());
        let open = p();
        if open_faults {
            faults = faults.open(open);
        }
        let n = u.int_in_range(1..=max_clients).unwrap_or(1);
        let mut clients = vec![Vec::new(); n];
        // Events are dealt to the clients in turn, so every client gets some
        // early in the input (short inputs still exercise concurrency).
        let mut total = 0;
        while !u.is_empty() && total < max_events.saturating_mul(n) {
            let who = u.choose_index(n).unwrap_or(0);
            if clients[who].len() >= max_events {
                total += 1;
                continue;
            }
            let event = match u.int_in_range(0u8..=15).unwrap_or(0) {
                0..=10 => {
                    let len = u.int_in_range(0usize..=64).unwrap_or(0);
                    let len = len.min(u.len());
                    Event::Request(u.bytes(len).map(<[u8]>::to_vec).unwrap_or_default())
                }
                11..=13 => Event::Wait(Duration::from_millis(
                    u.int_in_range(0u64..=60_000).unwrap_or(0),
                )),
                14 => Event::Restart,
                _ => Event::Stop,
            };
            clients[who].push(event);
            total += 1;
        }
        Scenario {
            seed,
            faults,
            clients,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoding_never_fails_and_is_bounded() {
        assert_eq!(Scenario::decode(&[], 3, 8, false).clients, vec![vec![]]);
        let bytes: Vec<u8> = (0..4096u32).map(|i| (i * 7919 % 251) as u8).collect();
        let s = Scenario::decode(&bytes, 3, 8, false);
        assert!(!s.clients.is_empty() && s.clients.len() <= 3);
        assert!(s.clients.iter().all(|c| c.len() <= 8), "{s:?}");
        assert_eq!(s, Scenario::decode(&bytes, 3, 8, false));
    }

    #[test]
    fn any_limits_are_clamped() {
        let bytes = [0xff; 4096];
        for (clients, events) in [(0, 0), (1, 1), (usize::MAX, usize::MAX)] {
            let s = Scenario::decode(&bytes, clients, events, true);
            assert!((1..=MAX_CLIENTS.min(clients.max(1))).contains(&s.clients.len()));
            assert!(s.clients.iter().all(|c| c.len() <= events.min(MAX_EVENTS)));
        }
    }
}

//! Fuzzes the echo service (`examples/echo/mod.rs`) with `mqtwin::fuzzkit`:
//! the whole user-side code. `MQTWIN_PLANT_BUG=1` fuzzes its planted bug.
#![no_main]
#[path = "../../examples/echo/mod.rs"]
mod echo;
use mqtwin::fuzzkit::{arbitrary::Unstructured, retry, Client, Kit};
use mqtwin::{twin::Queue, twin::Twin, Error, MessageQueue, Namespace};

struct Peer { id: u8, seq: u8, req: Queue, reply: Queue }

impl Client for Peer {
    fn connect(ns: &Twin, id: usize) -> Result<Self, Error> {
        let req = ns.open(echo::REQUESTS, &echo::options())?;
        let reply = ns.open(&echo::reply_queue(id as u8), &echo::options())?;
        Ok(Peer { id: id as u8, seq: 0, req, reply })
    }
    // One request from the fuzz bytes; the invariant: its reply comes back intact.
    fn request(&mut self, u: &mut Unstructured<'_>) -> Result<(), String> {
        self.seq = self.seq.wrapping_add(1);
        let (prio, len) = (u.int_in_range(0..=9).unwrap_or(0), u.int_in_range(0..=62).unwrap_or(0));
        let msg = [&[self.id, self.seq][..], u.bytes(len.min(u.len())).unwrap_or_default()].concat();
        retry(|| self.req.send(&msg, prio)).map_err(|e| format!("send: {e}"))?;
        let (data, got_prio) = retry(|| self.reply.receive_vec()).map_err(|e| format!("receive: {e}"))?;
        match (&data, got_prio) == (&msg, prio) {
            true => Ok(()),
            false => Err(format!("sent {msg:?} at {prio}, got {:?} at {}", data, got_prio)),
        }
    }
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let bug = std::env::var_os("MQTWIN_PLANT_BUG").is_some();
    let serve = move |ns: &Twin| match bug {
        true => echo::serve_with(ns, true).map(drop).map_err(|e| e.to_string()),
        false => echo::serve(ns).map(drop).map_err(|e| e.to_string()),
    };
    Kit::<Peer>::new(serve, |ns| echo::shutdown(ns).expect("shutdown")).fuzz(data);
});

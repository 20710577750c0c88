//! Message order: highest priority first, FIFO within a priority.

use mqtwin::{Error, MessageQueue, Namespace, OpenOptions, Received};

use crate::harness::Harness;

fn priority_then_fifo<H: Harness>(h: &H) {
    let q = h
        .ns()
        .open(
            &h.name("order"),
            &OpenOptions::read_write()
                .create_new()
                .capacity(10)
                .max_msg_len(16),
        )
        .unwrap();
    for (m, p) in [
        ("A", 1),
        ("B", 5),
        ("C", 1),
        ("D", 5),
        ("E", 0),
        ("F", 32767),
    ] {
        assert_eq!(q.send(m.as_bytes(), p), Ok(()));
    }
    let mut buf = [0u8; 16];
    let mut got = String::new();
    for p in [32767, 5, 5, 1, 1, 0] {
        assert_eq!(
            q.receive(&mut buf),
            Ok(Received {
                len: 1,
                priority: p
            })
        );
        got.push(buf[0] as char);
    }
    assert_eq!(got, "FBDACE");
    assert_eq!(q.try_receive(&mut buf), Err(Error::WouldBlock));
}

fn zero_length_messages<H: Harness>(h: &H) {
    let q = h
        .ns()
        .open(
            &h.name("zero"),
            &OpenOptions::read_write()
                .create_new()
                .capacity(2)
                .max_msg_len(8),
        )
        .unwrap();
    assert_eq!(q.send(b"", 7), Ok(()));
    assert_eq!(q.attributes().unwrap().current_messages, 1);
    let mut buf = [0xAAu8; 8];
    assert_eq!(
        q.receive(&mut buf),
        Ok(Received {
            len: 0,
            priority: 7
        })
    );
    assert_eq!(buf, [0xAA; 8], "bytes beyond the message are untouched");
}

crate::instantiate!(priority_then_fifo, zero_length_messages);

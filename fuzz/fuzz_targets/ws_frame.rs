//! `ws::FrameDecoder` (RFC 6455 client frames) with small limits, fed in pieces the input
//! chooses.
//!
//! Input: two bytes choosing `max_frame_size` and `max_message_size`, a split prefix (see
//! `split::take_sizes`), then the client's bytes. Checks: no panic; the same messages and
//! error as when the bytes arrive whole; the decoder keeps returning its error; what it
//! returns respects the limits and the protocol (control payloads of at most 125 bytes,
//! close codes a peer may send); after `Ok(None)` at most one frame header (14 bytes) and
//! `max_frame_size` of payload are buffered.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sockjs_core::ws::{FrameDecoder, Incoming, Limits, ProtocolError, is_valid_close_code};
use sockjs_fuzz::split::{chunks, take_sizes};

/// The longest RFC 6455 frame header: 2 bytes, 8 of extended length, 4 of mask.
const MAX_HEADER: usize = 14;

type Outcome = (Vec<Incoming>, Option<ProtocolError>);

fn decode(limits: Limits, pieces: &[&[u8]]) -> Outcome {
    let mut decoder = FrameDecoder::new(limits);
    let mut out = Vec::new();
    for piece in pieces {
        decoder.feed(piece);
        loop {
            match decoder.next() {
                Ok(Some(incoming)) => {
                    check(&limits, &incoming);
                    out.push(incoming);
                }
                Ok(None) => break,
                Err(e) => {
                    assert_eq!(decoder.next(), Err(e), "the error did not stick");
                    assert_eq!(decoder.buffered_len(), 0, "bytes kept after an error");
                    return (out, Some(e));
                }
            }
        }
        let bound = MAX_HEADER + limits.max_frame_size;
        assert!(
            decoder.buffered_len() <= bound,
            "{} bytes buffered waiting for more, bound {bound}",
            decoder.buffered_len()
        );
    }
    (out, None)
}

fn check(limits: &Limits, incoming: &Incoming) {
    match incoming {
        Incoming::Text(t) => assert!(t.len() <= limits.max_message_size, "text over the limit"),
        Incoming::Binary(b) => assert!(b.len() <= limits.max_message_size, "binary over the limit"),
        Incoming::Ping(p) | Incoming::Pong(p) => assert!(p.len() <= 125, "control over 125"),
        Incoming::Close(Some((code, reason))) => {
            assert!(is_valid_close_code(*code), "close code {code} passed");
            assert!(reason.len() <= 123, "close reason over 123 bytes");
        }
        Incoming::Close(None) => {}
    }
}

fuzz_target!(|input: &[u8]| {
    let [a, b, rest @ ..] = input else { return };
    let limits = Limits {
        max_frame_size: usize::from(*a) * 2,
        max_message_size: usize::from(*b) * 4,
    };
    let (sizes, data) = take_sizes(rest);
    let whole = decode(limits, &[data]);
    let split = decode(limits, &chunks(data, sizes));
    assert_eq!(split, whole, "split feeding changed the outcome");
});

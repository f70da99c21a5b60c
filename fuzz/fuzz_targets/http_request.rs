//! `http::RequestDecoder` on any bytes, fed in pieces the input chooses.
//!
//! Input: three bytes choosing the limits, then a split prefix (see `split::take_sizes`),
//! then the bytes a client sends. Checks: no panic; the requests and the error are the same
//! as when the bytes arrive whole; the bytes buffered after a feed never exceed
//! `max_head_size + max_body_size` plus the longest chunk-size line the decoder waits for
//! plus that feed, and after decoding what it can, the same without the feed; every request
//! respects the limits.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sockjs_core::http::{DecoderLimits, HttpError, Request, RequestDecoder};
use sockjs_fuzz::split::{chunks, take_sizes};

/// The longest chunk-size line the decoder buffers before refusing it (fixed in the core).
const MAX_CHUNK_LINE: usize = 1024;

/// Requests decoded and the error that stopped decoding, if one did.
type Outcome = (Vec<Request>, Option<HttpError>);

fn decode(limits: DecoderLimits, pieces: &[&[u8]]) -> Outcome {
    let bound = limits.max_head_size + limits.max_body_size + MAX_CHUNK_LINE;
    let mut decoder = RequestDecoder::new(limits);
    let mut requests = Vec::new();
    for piece in pieces {
        decoder.feed(piece);
        assert!(
            decoder.buffered() <= bound + piece.len(),
            "{} bytes buffered after a feed of {}, bound {bound}",
            decoder.buffered(),
            piece.len()
        );
        loop {
            match decoder.decode() {
                Ok(Some(req)) => {
                    assert!(
                        req.body.len() <= limits.max_body_size,
                        "body over the limit"
                    );
                    assert!(
                        req.headers.len() <= limits.max_headers.max(1),
                        "too many headers"
                    );
                    requests.push(req);
                }
                Ok(None) => break,
                Err(e) => {
                    // The decoder keeps returning its error.
                    assert_eq!(decoder.decode(), Err(e));
                    return (requests, Some(e));
                }
            }
        }
        assert!(
            decoder.buffered() <= bound,
            "{} bytes buffered waiting for more, bound {bound}",
            decoder.buffered()
        );
    }
    (requests, None)
}

fuzz_target!(|input: &[u8]| {
    let [a, b, c, rest @ ..] = input else { return };
    let limits = DecoderLimits {
        max_head_size: 16 + usize::from(*a) * 4,
        max_headers: usize::from(b % 20),
        max_body_size: usize::from(*c) * 2,
    };
    let (sizes, data) = take_sizes(rest);
    let whole = decode(limits, &[data]);
    let split = decode(limits, &chunks(data, sizes));
    assert_eq!(split, whole, "split feeding changed the outcome");
});

//! permessage-deflate: `ws::deflate::negotiate` on arbitrary headers, and
//! `FrameDecoder::with_deflate` / `Inflater` on arbitrary compressed bytes.
//!
//! Input: a flags byte (context takeover each way, the config's client window), a limit byte
//! (`max_message_size` = 16 × it, `max_frame_size` = half that, at least 1), a header length
//! byte `n` and `n` bytes of `Sec-WebSocket-Extensions`, a split prefix (see
//! `split::take_sizes`), then frames: each is a control byte (bit 7 FIN, bit 6 RSV1, low
//! nibble the opcode), a length byte and that many payload bytes, masked here.
//!
//! Checks: no panic; an agreed answer is itself an offer the same config accepts with the
//! same outcome, and names only what was negotiated; the decoder gives the same messages and
//! error however the bytes are split, never a message over `max_message_size`, and its
//! message buffer never holds capacity past `max_message_size + 1`; a lone `Inflater` fed the
//! payloads keeps its output within `limit + 1` capacity; and what a `Deflater` compresses
//! (the payloads, as messages on one context) inflates back exactly.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use sockjs_core::ws::deflate::{DeflateConfig, DeflateParams, Deflater, Inflater, negotiate};
use sockjs_core::ws::{FrameDecoder, Incoming, Limits, ProtocolError};
use sockjs_fuzz::split::{chunks, take_sizes};

const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

type Outcome = (Vec<Incoming>, Option<ProtocolError>);

fn check_negotiation(config: &DeflateConfig, header: &[u8]) {
    let Some(agreement) = negotiate(config, [header]) else {
        return;
    };
    let response = agreement.response.as_bytes();
    assert!(response.starts_with(b"permessage-deflate"));
    assert!(response.len() <= 120, "answer too long");
    assert_eq!(
        negotiate(config, [response]).as_ref(),
        Some(&agreement),
        "the answer is not an offer with the same outcome"
    );
    let p = agreement.params;
    assert_eq!(p.server_max_window_bits, 15);
    assert!((8..=15).contains(&p.client_max_window_bits));
}

/// Builds masked frames from the structured input; returns the frames and their payloads.
fn frames(mut data: &[u8]) -> (Vec<u8>, Vec<Vec<u8>>) {
    let mut out = Vec::new();
    let mut payloads = Vec::new();
    while let [control, len, rest @ ..] = data {
        let len = usize::from(*len).min(rest.len());
        let payload = &rest[..len];
        data = &rest[len..];
        out.push(control & 0xcf);
        if len < 126 {
            out.push(0x80 | len as u8);
        } else {
            out.push(0x80 | 126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        out.extend_from_slice(&MASK);
        out.extend(payload.iter().zip(MASK.iter().cycle()).map(|(b, m)| b ^ m));
        payloads.push(payload.to_vec());
    }
    (out, payloads)
}

fn decode(params: &DeflateParams, limits: Limits, pieces: &[&[u8]]) -> Outcome {
    let mut decoder = FrameDecoder::with_deflate(limits, Inflater::new(params));
    let mut out = Vec::new();
    for piece in pieces {
        decoder.feed(piece);
        loop {
            let result = decoder.next();
            assert!(
                decoder.message_capacity()
                    <= limits.max_message_size.max(limits.max_frame_size) * 2 + 1,
                "message buffer of {} bytes",
                decoder.message_capacity()
            );
            match result {
                Ok(Some(incoming)) => {
                    match &incoming {
                        Incoming::Text(t) => assert!(t.len() <= limits.max_message_size),
                        Incoming::Binary(b) => assert!(b.len() <= limits.max_message_size),
                        _ => {}
                    }
                    out.push(incoming);
                }
                Ok(None) => break,
                Err(e) => {
                    assert_eq!(decoder.next(), Err(e), "the error did not stick");
                    return (out, Some(e));
                }
            }
        }
    }
    (out, None)
}

fuzz_target!(|input: &[u8]| {
    let [flags, limit, header_len, rest @ ..] = input else {
        return;
    };
    let header_len = usize::from(*header_len).min(rest.len());
    let (header, rest) = rest.split_at(header_len);
    let config = DeflateConfig {
        server_no_context_takeover: flags & 1 != 0,
        client_no_context_takeover: flags & 2 != 0,
        client_max_window_bits: 7 + (flags >> 4),
        min_message_size: 0,
        level: u32::from(flags >> 2 & 3) * 3,
    };
    check_negotiation(&config, header);
    check_negotiation(&DeflateConfig::default(), header);

    let params = DeflateParams {
        server_no_context_takeover: config.server_no_context_takeover,
        client_no_context_takeover: config.client_no_context_takeover,
        server_max_window_bits: 15,
        client_max_window_bits: 15,
    };
    let max_message_size = usize::from(*limit) * 16;
    let limits = Limits {
        max_frame_size: (max_message_size / 2).max(1),
        max_message_size,
    };
    let (sizes, data) = take_sizes(rest);
    let (bytes, payloads) = frames(data);
    let whole = decode(&params, limits, &[&bytes]);
    let split = decode(&params, limits, &chunks(&bytes, sizes));
    assert_eq!(split, whole, "split feeding changed the outcome");

    // Every payload as a compressed message to a lone inflater, until an error.
    let mut inflater = Inflater::new(&params);
    for payload in &payloads {
        let mut out = Vec::new();
        let result = inflater
            .inflate(payload, &mut out, max_message_size)
            .and_then(|()| inflater.finish(&mut out, max_message_size));
        let bound = if result.is_ok() {
            max_message_size
        } else {
            max_message_size + 1
        };
        assert!(out.len() <= bound, "{} bytes inflated", out.len());
        assert!(
            out.capacity() <= max_message_size + 1,
            "capacity {}",
            out.capacity()
        );
        if result.is_err() {
            break;
        }
    }

    // And every payload as a message compressed on one context, inflated back by a peer
    // that resets exactly when the deflater does.
    let mut deflater = Deflater::new(&params, &config);
    let mut inflater = Inflater::new(&DeflateParams {
        client_no_context_takeover: params.server_no_context_takeover,
        ..params
    });
    for payload in &payloads {
        let mut compressed = BytesMut::new();
        assert!(deflater.compress(&[payload], &mut compressed));
        let inflated = inflater.inflate_message(&compressed, payload.len());
        assert_eq!(inflated.as_deref(), Ok(&payload[..]), "round trip");
    }
});

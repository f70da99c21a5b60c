//! Heap cost of permessage-deflate, measured with a counting global allocator: the state
//! one connection keeps, and the peak while a decompression bomb is refused.
//!
//! One test only, so that no other test allocates while it measures.

use std::alloc::System;

use bytes::BytesMut;
use cap::Cap;
use sockjs_core::testing::ws_frame;
use sockjs_core::ws::deflate::{
    DEFLATER_MEMORY, DeflateConfig, Deflater, INFLATER_MEMORY, Inflater, negotiate,
};
use sockjs_core::ws::{FrameDecoder, Limits, ProtocolError};

#[global_allocator]
static ALLOCATOR: Cap<System> = Cap::new(System, usize::MAX);

/// What the test runner's other threads may allocate while a figure is measured.
const NOISE: usize = 4096;

#[test]
fn connection_state_and_bomb_peak() {
    let config = DeflateConfig::default();
    let params = negotiate(&config, [&b"permessage-deflate"[..]])
        .unwrap()
        .params;

    // Nothing is allocated before the first message.
    let before = ALLOCATOR.allocated();
    let mut deflater = Deflater::new(&params, &config);
    let mut inflater = Inflater::new(&params);
    assert_eq!(ALLOCATOR.allocated(), before);
    assert_eq!((deflater.memory(), inflater.memory()), (0, 0));

    // The state of one idle connection after it sent and received a message.
    let message = "a[\"some message worth compressing, some message worth compressing\"]";
    let mut out = BytesMut::with_capacity(1024);
    let at = ALLOCATOR.allocated();
    assert!(deflater.compress(&[message.as_bytes()], &mut out));
    let deflater_state = ALLOCATOR.allocated() - at;
    let mut inflated = Vec::with_capacity(1024);
    let at = ALLOCATOR.allocated();
    inflater.inflate(&out, &mut inflated, 1 << 20).unwrap();
    inflater.finish(&mut inflated, 1 << 20).unwrap();
    let inflater_state = ALLOCATOR.allocated() - at;
    assert_eq!(inflated, message.as_bytes());
    drop((out, inflated));
    let idle = ALLOCATOR.allocated() - before;
    println!(
        "deflate state with context takeover: Deflater {deflater_state} B, \
         Inflater {inflater_state} B, idle connection {idle} B"
    );
    // The allocator is global: the test runner's own threads may allocate a little meanwhile.
    assert!(idle.abs_diff(deflater_state + inflater_state) < NOISE);
    assert_eq!(deflater.memory(), DEFLATER_MEMORY);
    assert_eq!(inflater.memory(), INFLATER_MEMORY);
    // The documented figures are within 10% of what is measured.
    assert!(deflater_state.abs_diff(DEFLATER_MEMORY) * 10 < DEFLATER_MEMORY);
    assert!(inflater_state.abs_diff(INFLATER_MEMORY) * 10 < INFLATER_MEMORY);
    // Whatever the level.
    for level in [0, 9] {
        let mut other = Deflater::new(&params, &DeflateConfig { level, ..config });
        let mut out = BytesMut::with_capacity(1024);
        let at = ALLOCATOR.allocated();
        assert!(other.compress(&[message.as_bytes()], &mut out));
        let state = ALLOCATOR.allocated() - at;
        assert!(state.abs_diff(deflater_state) < NOISE, "level {level}");
    }

    // Without context takeover an idle connection holds nothing.
    let no_takeover = negotiate(
        &config,
        [&b"permessage-deflate; server_no_context_takeover; client_no_context_takeover"[..]],
    )
    .unwrap()
    .params;
    let before = ALLOCATOR.allocated();
    let mut lean_deflater = Deflater::new(&no_takeover, &config);
    let mut lean_inflater = Inflater::new(&no_takeover);
    for _ in 0..3 {
        let mut out = BytesMut::new();
        assert!(lean_deflater.compress(&[message.as_bytes()], &mut out));
        let inflated = lean_inflater.inflate_message(&out, 1 << 20).unwrap();
        assert_eq!(inflated, message.as_bytes());
    }
    assert!(ALLOCATOR.allocated().abs_diff(before) < NOISE);
    assert_eq!((lean_deflater.memory(), lean_inflater.memory()), (0, 0));

    // A bomb: compressed zeros that would inflate to 64 MiB, against a 1 MiB limit. The
    // allocator refuses anything past the decoder's state, its frame buffer, the limit
    // and some slack; an allocation refused aborts the test.
    let limit = 1 << 20;
    let zeros = vec![0u8; 1 << 20];
    let mut bomb = BytesMut::new();
    assert!(deflater.compress(&vec![&zeros[..]; 64], &mut bomb));
    drop(zeros);
    let input = ws_frame(true, 0x42, &bomb);
    drop(bomb);
    let limits = Limits {
        max_frame_size: 1 << 20,
        max_message_size: limit,
    };
    let mut decoder = FrameDecoder::with_deflate(limits, Inflater::new(&params));
    let baseline = ALLOCATOR.allocated();
    // Feeding copies the frame (about 300 KiB); unmasking copies its payload once more;
    // the message may grow to limit + 1.
    let allowed = baseline + 2 * input.len() + limit + 1 + 64 * 1024;
    ALLOCATOR.set_limit(allowed).unwrap();
    decoder.feed(&input);
    let result = decoder.next();
    ALLOCATOR.set_limit(usize::MAX).unwrap();
    assert_eq!(
        result.map_err(|e| e.code),
        Err(ProtocolError::MESSAGE_TOO_BIG)
    );
    println!(
        "bomb of {} compressed bytes refused within {} B over the baseline",
        input.len(),
        allowed - baseline
    );
    // Afterwards the decoder holds nothing but its error.
    assert!(ALLOCATOR.allocated() <= baseline);
    assert!(decoder.next().is_err());
}

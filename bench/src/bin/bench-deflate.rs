//! permessage-deflate's cost and gain in the core, measured in one run: bytes on the wire and
//! the server's CPU time per echoed message for a ~200-byte JSON chat message and a 4 KiB
//! JSON document, plain and compressed (with and without context takeover), and the memory
//! an idle compressed session holds.
//!
//! ```text
//! bench-deflate [--rounds N] [--chat N] [--doc N] [--idle N] [--json]
//! ```
//!
//! No sockets: one `sockjs_core::Server` per measurement, driven in this thread as a host
//! would (bytes in, events out, the application's echo, output taken and reported written),
//! so the figures are the core's own work, the part compression changes; a host adds the
//! same socket and runtime cost whether or not messages are compressed. The client's frames
//! (masked, compressed by the client's codec when negotiated, as a browser compresses every
//! message) are made before the clock starts; CPU time is this thread's time on a CPU
//! (`/proc/thread-self/schedstat`, nanoseconds), so other work on the machine does not
//! count. Rounds interleave the modes; the table gives medians. Echoes are checked: the
//! first ones of every measurement are inflated and compared with what was sent.

use std::time::{Instant, SystemTime};

use sockjs_bench::procfs::thread_cpu_ns;
use sockjs_bench::ws_client::encode_client_frame;
use sockjs_core::bytes::BytesMut;
use sockjs_core::ws::deflate::{DeflateConfig, DeflateParams, Deflater, Inflater, negotiate};
use sockjs_core::{ConnectionId, Event, Options, Server};

const USAGE: &str = "usage: bench-deflate [--rounds N] [--chat N] [--doc N] [--idle N] [--json]";
/// Echoes of every measurement inflated and checked.
const CHECKED: usize = 64;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Plain,
    Deflate,
    DeflateNoTakeover,
}

impl Mode {
    const ALL: [Mode; 3] = [Mode::Plain, Mode::Deflate, Mode::DeflateNoTakeover];

    fn name(self) -> &'static str {
        match self {
            Mode::Plain => "plain",
            Mode::Deflate => "deflate",
            Mode::DeflateNoTakeover => "deflate-no-takeover",
        }
    }

    /// What the client offers (Chromium's offer for `Deflate`).
    fn offer(self) -> Option<&'static str> {
        match self {
            Mode::Plain => None,
            Mode::Deflate => Some("permessage-deflate; client_max_window_bits"),
            Mode::DeflateNoTakeover => {
                Some("permessage-deflate; server_no_context_takeover; client_no_context_takeover")
            }
        }
    }
}

struct Args {
    rounds: usize,
    chat: usize,
    doc: usize,
    idle: usize,
    json: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        rounds: 3,
        chat: 20_000,
        doc: 4_000,
        idle: 500,
        json: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut number = || -> Result<usize, String> {
            let v = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
            v.parse().map_err(|_| format!("bad number for {flag}: {v}"))
        };
        match flag.as_str() {
            "--rounds" => args.rounds = number()?.clamp(1, 99),
            "--chat" => args.chat = number()?.max(CHECKED),
            "--doc" => args.doc = number()?.max(CHECKED),
            "--idle" => args.idle = number()?.clamp(1, 20_000),
            "--json" => args.json = true,
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown flag: {other}")),
        }
    }
    Ok(args)
}

fn rss_kib() -> u64 {
    sockjs_bench::procfs::rss_kib(std::process::id()).unwrap_or(0)
}

/// A small deterministic generator (xorshift).
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }
}

const USERS: [&str; 6] = [
    "Ann Example",
    "Bob Tester",
    "Chandra Rao",
    "Dmitri Ivanov",
    "Eve Martin",
    "Fatima Zahra",
];
const WORDS: [&str; 24] = [
    "release", "review", "at", "three", "pushed", "the", "fixes", "can", "you", "look", "at",
    "build", "failing", "again", "on", "main", "thanks", "lunch", "meeting", "moved", "to",
    "tomorrow", "deploy", "done",
];

/// A chat message of about 200 bytes, as a chat application sends them: the same shape each
/// time, other values.
fn chat_message(g: &mut Gen, i: usize) -> String {
    let user = g.pick(&USERS);
    let words: Vec<&str> = (0..8 + g.next() % 6).map(|_| g.pick(&WORDS)).collect();
    format!(
        "{{\"type\":\"message\",\"room\":\"general\",\"id\":{},\"ts\":{},\"user\":{{\"id\":\"u-{}\",\
         \"name\":\"{user}\"}},\"text\":\"{}\",\"reactions\":[]}}",
        100_000 + i,
        1_700_000_000_000u64 + (i as u64) * 1_337,
        4_000 + g.next() % 900,
        words.join(" "),
    )
}

/// A JSON document of 4 KiB: a page of order items.
fn doc_message(g: &mut Gen, i: usize) -> String {
    let mut items = Vec::new();
    let mut len = 0;
    let mut n = 0;
    while len < 3_900 {
        let item = format!(
            "{{\"sku\":\"SKU-{:06}\",\"name\":\"{} {}\",\"price\":{}.{:02},\"qty\":{},\
             \"warehouse\":\"{}\",\"tags\":[\"{}\",\"{}\"]}}",
            g.next() % 1_000_000,
            g.pick(&WORDS),
            g.pick(&WORDS),
            g.next() % 500,
            g.next() % 100,
            1 + g.next() % 20,
            g.pick(&["north", "south", "east", "west"]),
            g.pick(&WORDS),
            g.pick(&WORDS),
        );
        len += item.len() + 1;
        items.push(item);
        n += 1;
    }
    let mut doc = format!(
        "{{\"order\":{},\"customer\":\"c-{}\",\"count\":{n},\"items\":[{}]}}",
        900_000 + i,
        g.next() % 100_000,
        items.join(",")
    );
    doc.truncate(doc.len().min(4096));
    while doc.len() < 4096 {
        doc.push(' ');
    }
    doc
}

/// The server, one WebSocket session on it, and what the client agreed to.
struct Setup {
    server: Server,
    now: Instant,
    conn: ConnectionId,
    /// The client's codec: it compresses what it sends as agreed and inflates the echoes.
    client: Option<(Deflater, Inflater)>,
    wire_in: usize,
    wire_out: usize,
}

fn new_server(mode: Mode) -> (Server, Instant) {
    let now = Instant::now();
    let compression = (mode != Mode::Plain).then(DeflateConfig::default);
    let config =
        sockjs_core::Config::new().endpoint("/echo", Options::default().compression(compression));
    (
        Server::new(config, now, SystemTime::now(), Box::new(|| 4)),
        now,
    )
}

/// Takes and reports written everything waiting for `conn`; returns it.
fn take_output(
    server: &mut Server,
    now: Instant,
    conn: ConnectionId,
    keep: bool,
) -> (usize, Vec<u8>) {
    while server.poll_io().is_some() {}
    let chunks = server.output(conn);
    let n: usize = chunks.iter().map(|c| c.len()).sum();
    let kept = if keep { chunks.concat() } else { Vec::new() };
    server.handle_written(now, conn, n);
    (n, kept)
}

/// Opens a SockJS WebSocket session on `server` offering what `mode` offers.
fn open(
    server: &mut Server,
    now: Instant,
    mode: Mode,
    id: usize,
) -> (ConnectionId, Option<DeflateParams>) {
    let conn = server.accept(now, "127.0.0.1:40000".parse().expect("address"));
    let mut request = format!(
        "GET /echo/000/s{id}/websocket HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    );
    if let Some(offer) = mode.offer() {
        request.push_str(&format!("Sec-WebSocket-Extensions: {offer}\r\n"));
    }
    request.push_str("\r\n");
    server.handle_bytes(now, conn, request.as_bytes());
    while server.poll_event().is_some() {}
    let (_, head) = take_output(server, now, conn, true);
    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
    let answer = head
        .lines()
        .find_map(|l| l.strip_prefix("sec-websocket-extensions: "))
        .map(str::to_string);
    assert_eq!(answer.is_some(), mode != Mode::Plain, "negotiation: {head}");
    let params = answer.map(|a| {
        negotiate(&DeflateConfig::default(), [a.trim().as_bytes()])
            .expect("the answer is acceptable")
            .params
    });
    (conn, params)
}

/// The client's codec for the agreed `params`: it compresses every message (as browsers do)
/// and resets as the answer's `client_no_context_takeover` says.
fn client_codec(params: &DeflateParams) -> (Deflater, Inflater) {
    let sending = DeflateParams {
        server_no_context_takeover: params.client_no_context_takeover,
        ..*params
    };
    let receiving = DeflateParams {
        client_no_context_takeover: params.server_no_context_takeover,
        ..*params
    };
    let config = DeflateConfig {
        min_message_size: 0,
        ..DeflateConfig::default()
    };
    (Deflater::new(&sending, &config), Inflater::new(&receiving))
}

/// The client frame carrying `message` (a SockJS array of one string), compressed if agreed.
fn client_frame(client: Option<&mut (Deflater, Inflater)>, message: &str, i: usize) -> Vec<u8> {
    let text = serde_json::to_string(&[message]).expect("JSON");
    let mask = (i as u32).wrapping_mul(0x9e37_79b9).to_ne_bytes();
    let mut frame = Vec::with_capacity(text.len() + 16);
    match client {
        Some((deflater, _)) => {
            let mut compressed = BytesMut::new();
            assert!(deflater.compress(&[text.as_bytes()], &mut compressed));
            encode_client_frame(&mut frame, 0x41, &compressed, mask);
        }
        None => encode_client_frame(&mut frame, 0x1, text.as_bytes(), mask),
    }
    frame
}

/// Reads server frames out of `bytes`, inflating compressed ones: their texts.
fn server_texts(mut bytes: &[u8], inflater: Option<&mut Inflater>) -> Vec<String> {
    let mut inflater = inflater;
    let mut texts = Vec::new();
    while bytes.len() >= 2 {
        let (len, header) = match bytes[1] & 0x7f {
            126 => (usize::from(u16::from_be_bytes([bytes[2], bytes[3]])), 4),
            127 => (
                u64::from_be_bytes(bytes[2..10].try_into().expect("8")) as usize,
                10,
            ),
            n => (usize::from(n), 2),
        };
        let payload = &bytes[header..header + len];
        let payload = match inflater.as_deref_mut() {
            Some(inflater) if bytes[0] & 0x40 != 0 => inflater
                .inflate_message(payload, 1 << 24)
                .expect("inflates"),
            _ => payload.to_vec(),
        };
        texts.push(String::from_utf8(payload).expect("UTF-8"));
        bytes = &bytes[header + len..];
    }
    texts
}

fn setup(mode: Mode) -> Setup {
    let (mut server, now) = new_server(mode);
    let (conn, params) = open(&mut server, now, mode, 0);
    let mut client = params.as_ref().map(client_codec);
    // The `o` frame.
    let (_, open_frame) = take_output(&mut server, now, conn, true);
    let texts = server_texts(&open_frame, client.as_mut().map(|c| &mut c.1));
    assert!(texts.is_empty() || texts == ["o"], "{texts:?}");
    Setup {
        server,
        now,
        conn,
        client,
        wire_in: 0,
        wire_out: 0,
    }
}

/// One measurement: echoes `messages` through a fresh server; CPU ns per message.
fn echo_run(mode: Mode, messages: &[String]) -> (f64, f64, f64) {
    let mut s = setup(mode);
    let frames: Vec<Vec<u8>> = messages
        .iter()
        .enumerate()
        .map(|(i, m)| client_frame(s.client.as_mut(), m, i))
        .collect();
    let mut kept = Vec::new();
    let t0 = thread_cpu_ns();
    for (i, frame) in frames.iter().enumerate() {
        s.wire_in += frame.len();
        s.server.handle_bytes(s.now, s.conn, frame);
        while let Some(event) = s.server.poll_event() {
            if let Event::Message { session, text, .. } = event {
                let _ = s.server.send(s.now, session, &text);
            }
        }
        let (n, bytes) = take_output(&mut s.server, s.now, s.conn, i < CHECKED);
        s.wire_out += n;
        if i < CHECKED {
            kept.push(bytes);
        }
    }
    let cpu = thread_cpu_ns() - t0;
    // The first echoes, as the client reads them.
    let mut inflater = s.client.as_mut().map(|c| &mut c.1);
    for (i, bytes) in kept.iter().enumerate() {
        let texts = server_texts(bytes, inflater.as_deref_mut());
        let want = format!("a{}", serde_json::to_string(&[&messages[i]]).expect("JSON"));
        assert_eq!(texts, [want], "echo {i} ({})", mode.name());
    }
    let n = messages.len() as f64;
    (cpu as f64 / n, s.wire_in as f64 / n, s.wire_out as f64 / n)
}

/// Opens `sessions` sessions that each exchange one chat message, then holds them idle: the
/// process's RSS growth and the server's deflate total, per session, in bytes.
fn idle_run(mode: Mode, sessions: usize) -> (f64, f64) {
    let (mut server, now) = new_server(mode);
    // One client codec that keeps nothing between messages serves every session: only the
    // server's state stays behind.
    let lean = negotiate(
        &DeflateConfig::default(),
        [&b"permessage-deflate; server_no_context_takeover; client_no_context_takeover"[..]],
    )
    .expect("offer")
    .params;
    let mut client = client_codec(&lean);
    let mut g = Gen(7);
    let before = rss_kib();
    let mut conns = Vec::with_capacity(sessions);
    for id in 0..sessions {
        let (conn, params) = open(&mut server, now, mode, id);
        let frame = client_frame(params.map(|_| &mut client), &chat_message(&mut g, id), id);
        server.handle_bytes(now, conn, &frame);
        while let Some(event) = server.poll_event() {
            if let Event::Message { session, text, .. } = event {
                let _ = server.send(now, session, &text);
            }
        }
        take_output(&mut server, now, conn, false);
        conns.push(conn);
    }
    let after = rss_kib();
    let n = sessions as f64;
    let rss = (after.saturating_sub(before) * 1024) as f64 / n;
    (rss, server.deflate_memory() as f64 / n)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("{e}");
            }
            eprintln!("{USAGE}");
            std::process::exit(2);
        }
    };
    let mut g = Gen(42);
    let chat: Vec<String> = (0..args.chat).map(|i| chat_message(&mut g, i)).collect();
    let doc: Vec<String> = (0..args.doc).map(|i| doc_message(&mut g, i)).collect();
    let chat_len = chat.iter().map(String::len).sum::<usize>() as f64 / chat.len() as f64;
    let payloads = [("chat", &chat, chat_len), ("doc-4k", &doc, 4096.0)];

    // (payload, mode) -> per-round figures.
    let mut echo: Vec<Vec<(f64, f64, f64)>> = vec![Vec::new(); payloads.len() * Mode::ALL.len()];
    let mut idle: Vec<Vec<(f64, f64)>> = vec![Vec::new(); Mode::ALL.len()];
    for round in 0..args.rounds {
        for (p, (_, messages, _)) in payloads.iter().enumerate() {
            for (m, mode) in Mode::ALL.iter().enumerate() {
                echo[p * Mode::ALL.len() + m].push(echo_run(*mode, messages));
            }
        }
        for (m, mode) in Mode::ALL.iter().enumerate() {
            idle[m].push(idle_run(*mode, args.idle));
        }
        eprintln!("bench-deflate: round {}/{} done", round + 1, args.rounds);
    }

    println!(
        "permessage-deflate in the core: {} round(s), medians; echo of one WebSocket session, \
         server CPU per message (in + out), bytes per message on the wire",
        args.rounds
    );
    println!(
        "{:<8} {:<20} {:>12} {:>9} {:>12} {:>12} {:>9} {:>9}",
        "payload", "mode", "cpu ns/msg", "x plain", "in B/msg", "out B/msg", "in x", "out x"
    );
    for (p, (name, _, len)) in payloads.iter().enumerate() {
        let plain = {
            let r = &echo[p * Mode::ALL.len()];
            (
                median(r.iter().map(|x| x.0).collect()),
                median(r.iter().map(|x| x.1).collect()),
                median(r.iter().map(|x| x.2).collect()),
            )
        };
        for (m, mode) in Mode::ALL.iter().enumerate() {
            let r = &echo[p * Mode::ALL.len() + m];
            let cpu = median(r.iter().map(|x| x.0).collect());
            let wire_in = median(r.iter().map(|x| x.1).collect());
            let wire_out = median(r.iter().map(|x| x.2).collect());
            println!(
                "{:<8} {:<20} {:>12.0} {:>9.2} {:>12.1} {:>12.1} {:>9.3} {:>9.3}",
                name,
                mode.name(),
                cpu,
                cpu / plain.0,
                wire_in,
                wire_out,
                wire_in / plain.1,
                wire_out / plain.2
            );
            if args.json {
                println!(
                    "{{\"case\":\"deflate-echo\",\"payload\":\"{name}\",\"message_bytes\":{len:.1},\
                     \"mode\":\"{}\",\"cpu_ns_per_msg\":{cpu:.0},\"wire_in_per_msg\":{wire_in:.1},\
                     \"wire_out_per_msg\":{wire_out:.1},\"rounds\":{}}}",
                    mode.name(),
                    args.rounds
                );
            }
        }
    }
    println!(
        "idle sessions ({} per measurement, each after one chat message both ways): bytes per session",
        args.idle
    );
    println!(
        "{:<20} {:>14} {:>18}",
        "mode", "RSS B/session", "deflate_memory/s"
    );
    for (m, mode) in Mode::ALL.iter().enumerate() {
        let rss = median(idle[m].iter().map(|x| x.0).collect());
        let held = median(idle[m].iter().map(|x| x.1).collect());
        println!("{:<20} {:>14.0} {:>18.0}", mode.name(), rss, held);
        if args.json {
            println!(
                "{{\"case\":\"deflate-idle\",\"mode\":\"{}\",\"rss_per_session\":{rss:.0},\
                 \"deflate_memory_per_session\":{held:.0},\"sessions\":{}}}",
                mode.name(),
                args.idle
            );
        }
    }
}

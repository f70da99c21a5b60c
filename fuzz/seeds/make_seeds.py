#!/usr/bin/env python3
"""Writes the hand-made seeds of the byte-level targets and of `server` (whose byte code
is described at the top of fuzz_targets/server.rs). Run from fuzz/: python3 seeds/make_seeds.py

The `ws_handshake` seeds are not made here: that target decodes its input with `arbitrary`,
so its seeds are small inputs a fuzzing run found, picked for reaching an RFC 6455 101, a
hixie-76 101 with its challenge answer, and each refusal.
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def write(target, name, data):
    os.makedirs(os.path.join(HERE, target), exist_ok=True)
    with open(os.path.join(HERE, target, name), "wb") as f:
        f.write(data)


def ws(op, payload, fin=True, mask=b"\x37\xfa\x21\x3d"):
    """A masked client frame."""
    out = bytes([(0x80 if fin else 0) | op])
    n = len(payload)
    if n < 126:
        out += bytes([0x80 | n])
    elif n < 65536:
        out += bytes([0x80 | 126]) + struct.pack(">H", n)
    else:
        out += bytes([0x80 | 127]) + struct.pack(">Q", n)
    return out + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


# http_request: limit bytes a, b, c; then k and k split sizes; then the client's bytes.
L = bytes([0xFF, 19, 0xFF])
write("http_request", "xhr_send_length", L + bytes([0])
      + b'POST /echo/000/abc/xhr_send HTTP/1.1\r\nHost: x\r\nContent-Length: 7\r\n\r\n["abc"]')
write("http_request", "chunked_pipelined_split", L + bytes([3, 0, 7, 200])
      + b"POST /echo/000/abc/xhr_send HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
      + b'3;ext=1\r\n["a\r\n2\r\n"]\r\n0\r\nTrailer: x\r\n\r\n'
      + b"GET /echo/info HTTP/1.1\r\n\r\n")
write("http_request", "http10_absolute_form", L + bytes([1, 5])
      + b"\r\nGET http://example.com/echo?x=1 HTTP/1.0\r\nConnection: keep-alive\r\n"
      + b"Expect: 100-continue\r\n\r\n")
write("http_request", "empty_content_length", L + bytes([0])
      + b"POST /echo/000/a/xhr_send HTTP/1.1\nContent-Length:\n\n")
write("http_request", "head_too_large", bytes([0, 2, 0, 0])
      + b"GET / HTTP/1.1\r\nX: " + b"a" * 40 + b"\r\nY: 1\r\nZ: 2\r\n\r\n")

# ws_frame: limit bytes a (frame = 2a), b (message = 4b); then k and sizes; then frames.
W = bytes([200, 200])
write("ws_frame", "text_ping_close", W + bytes([0])
      + ws(1, b'["hello"]') + ws(9, b"ping") + ws(8, struct.pack(">H", 1000) + b"bye"))
e_acute = "h\u00e9".encode()
write("ws_frame", "fragmented_utf8_split", W + bytes([2, 0, 1])
      + ws(1, e_acute[:2], fin=False) + ws(10, b"")
      + ws(0, e_acute[2:] + b"llo", fin=False) + ws(0, b"!"))
write("ws_frame", "extended_length", W + bytes([1, 193]) + ws(2, b"x" * 300))
write("ws_frame", "too_big", bytes([4, 4, 0]) + ws(1, b"0123456789"))

# ws_inflate: flags, limit (message = 16 * it), header length and header, k and sizes,
# then frames as (control byte: FIN 0x80, RSV1 0x40, opcode; length byte; payload).
import zlib


def raw_deflate(messages):
    """Each message compressed on one context, sync-flushed, the trailer removed."""
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    out = []
    for m in messages:
        data = c.compress(m) + c.flush(zlib.Z_SYNC_FLUSH)
        assert data.endswith(b"\x00\x00\xff\xff")
        out.append(data[:-4])
    return out


def inflate_frame(control, payload):
    return bytes([control, len(payload)]) + payload


HELLO = bytes([0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00])
H = b"permessage-deflate; client_max_window_bits"
write("ws_inflate", "rfc7692_hello", bytes([0x04, 200, len(H)]) + H + bytes([0])
      + inflate_frame(0xc1, HELLO) + inflate_frame(0xc1, bytes([0xf2, 0x00, 0x11, 0x00, 0x00]))
      + inflate_frame(0x89, b"") + inflate_frame(0x41, HELLO[:3]) + inflate_frame(0x80, HELLO[3:]))
H = (b"x-webkit-deflate-frame, permessage-deflate; server_max_window_bits=10, "
     b"permessage-deflate; server_no_context_takeover; client_max_window_bits=\"12\"")
msgs = raw_deflate([b'a["hello"]', b'a["hello","hello"]', b"", "\u00fcn\u00efc\u00f6d\u00e9".encode()])
write("ws_inflate", "offers_and_context", bytes([0x33, 100, len(H)]) + H + bytes([2, 3, 200])
      + b"".join(inflate_frame(0xc1, m) for m in msgs) + inflate_frame(0x82, b"plain"))
bomb = raw_deflate([bytes(200000)])[0]
write("ws_inflate", "bomb", bytes([0x00, 32, 0, 1, 5])
      + inflate_frame(0x42, bomb[:200]) + inflate_frame(0x80, bomb[200:400]))
H = b"permessage-deflate" + b"; a" * 20 + b', foo; b="' + b'\\"' * 30
write("ws_inflate", "hostile_header", bytes([0xff, 10, min(len(H), 255)]) + H[:255]
      + inflate_frame(0xc9, b"") + inflate_frame(0xc0, b"") + inflate_frame(0x41, b"\xff\xff"))

# client_payload: a mode byte (how jsonp_send reads the rest), then the bytes.
write("client_payload", "array",
      b"\x00" + b'["a","b\\u00e9\\ud83d\\ude00","\\u2028<script>"]')
write("client_payload", "ws_string", b"\x01" + b' "\\"quoted\\" \\/ \\b\\f\\n\\r\\t" ')
write("client_payload", "lone_surrogates", b"\x02" + b'["\\ud800x","\\udc00","\\ud800\\u0041"]')
write("client_payload", "form",
      b"\x03" + b"d=%5B%22x%25y%22%2C%22%3C%2Fscript%3E%22%5D&e=1")
write("client_payload", "not_strings", b"\x00" + b"[1,null,{}]")

# server: the byte code of fuzz_targets/server.rs.
# setup: heartbeat ~1 s, disconnect ~1 s, response_limit 4096, ping timeout ~530 ms,
# 6 sessions, 8 connections, 1024 queued bytes, 31 queued messages, 2048 unflushed,
# frames 256, messages 512, bodies 512, heads 768.
SETUP = bytes([24, 24, 128, 12, 5, 7, 64, 31, 64, 64, 64, 64, 64])


def blob(b):
    b = b.encode() if isinstance(b, str) else b
    assert len(b) < 256
    return bytes([len(b)]) + b


def strs(items):
    return bytes([len(items)]) + b"".join(blob(s) for s in items)


ACCEPT = b"\x00"
SHUTDOWN = b"\x0a"


def eof(conn):
    return bytes([11, conn])


def request(conn, kind, fields=b"", endpoint=0, session=0, flags=0, split=b""):
    return bytes([1, conn, kind, endpoint, session, 0, flags]) + fields + blob(split)


def frames(conn, items, split=b""):
    return bytes([2, conn, len(items)]) + b"".join(items) + blob(split)


def frame(kind, payload, flags=0, mask=b"\x37\xfa\x21\x3d"):
    return bytes([kind, flags]) + mask + payload


def written(conn, amount=0):
    """The host writes the connection's output: all of it (0), or one write of `amount`."""
    return bytes([4, conn]) + struct.pack("<H", amount)


def closed(conn):
    return bytes([5, conn])


def advance(millis, step=True):
    return bytes([6]) + struct.pack("<H", millis) + bytes([0 if step else 1])


def send(session, text):
    return bytes([7, session]) + blob(text)


def send_many(sessions, text):
    return bytes([8, len(sessions)]) + bytes(sessions) + blob(text)


def app_close(session, code, reason):
    return bytes([9, session]) + struct.pack("<H", code) + blob(reason)


XHR, XHR_SEND, XHR_STREAMING, EVENTSOURCE, HTMLFILE, JSONP, JSONP_SEND, WEBSOCKET = (
    4, 5, 6, 7, 8, 9, 10, 11)


def messages_body(items, chunk=None):
    mode = 0 if chunk is None else 0x80
    return bytes([mode]) + (bytes([chunk]) if chunk is not None else b"") + strs(items)


write("server", "xhr_polling", SETUP + ACCEPT
      + request(0, XHR)
      + request(0, XHR_SEND, messages_body(["hello", "w\u00f6rld"]))
      + send(0, "hi") + send(0, "there")
      + request(0, XHR, split=b"\x05\x00")
      + written(0) + advance(3000))
write("server", "streaming_transports", SETUP + ACCEPT + ACCEPT + ACCEPT
      + request(0, XHR_STREAMING, session=1)
      + request(1, EVENTSOURCE, session=2)
      + request(2, HTMLFILE, bytes([1]), session=3)
      + send(0, "to xhr_streaming") + send(1, "100% \r\n") + send(2, "</script>")
      + send_many([0, 1, 2], "everyone") + advance(2500)
      + app_close(2, 3000, "Go away!") + written(0, 100) + closed(1) + advance(3000))
write("server", "websocket_rfc6455", SETUP + ACCEPT
      + request(0, WEBSOCKET, bytes([0, 0]), session=4)
      + frames(0, [frame(0, strs(["a", "b"])), frame(3, blob("x")),
                   frame(1, blob('"c"'))], split=b"\x03")
      + send(0, "reply") + written(0)
      + frames(0, [frame(5, b"\x01" + struct.pack("<H", 1000) + blob("bye"))]))
write("server", "websocket_raw_and_hixie", SETUP + ACCEPT + ACCEPT
      + request(0, WEBSOCKET, bytes([2]) + struct.pack("<II", 155712099, 173347027)
                + bytes([3]) + b"Tm[K T2u" + bytes([1]))
      + frames(0, [frame(1, blob("raw text"))])
      + request(1, WEBSOCKET, bytes([1, 0]), session=5)
      + frames(1, [frame(1, blob("not json"))])
      + send(0, "raw reply") + advance(1500) + app_close(0, 4000, "done"))
write("server", "fixed_pages_and_jsonp", SETUP + ACCEPT
      + request(0, 0) + request(0, 1) + request(0, 2, flags=0x08)
      + request(0, 3, bytes([3])) + request(0, 12, bytes([1])) + request(0, 13, bytes([0]))
      + request(0, 14, blob("nothing/here"))
      + request(0, JSONP, bytes([1]), session=6)
      + request(0, JSONP_SEND, messages_body(["x&y"]) + bytes([1]), session=6)
      + request(0, JSONP, bytes([0]), session=6)
      + request(0, JSONP, bytes([1]), session=6)
      + ACCEPT + request(1, XHR, endpoint=1, flags=0x18 | 0x20)
      + request(1, XHR, endpoint=1, flags=0x08 | 0x20, session=7)
      + request(1, WEBSOCKET, bytes([0, 0]), endpoint=1, flags=0x08))
write("server", "queue_full_and_shutdown", SETUP[:6] + bytes([2, 4, 0]) + SETUP[9:] + ACCEPT
      + request(0, EVENTSOURCE)
      + send(0, "x" * 20) + send(0, "y" * 20) + send(0, "z" * 20) + send(0, "w" * 20)
      + send(0, "v" * 20) + ACCEPT + request(1, XHR, session=1) + SHUTDOWN + ACCEPT)
write("server", "pipelined_continue_http10", SETUP + ACCEPT
      + bytes([3, 0]) + blob(b"POST /echo/000/p/xhr HTTP/1.1\r\n\r\n"
                             b"POST /echo/000/p/xhr HTTP/1.1\r\n\r\nGET /echo HTTP/1.1\r\n\r\n")
      + request(0, XHR_SEND, messages_body(["chunked"], chunk=3), session=8, flags=0x40)
      + request(0, XHR_STREAMING, session=9, flags=0x01)
      + ACCEPT + request(1, XHR, session=8, flags=0x02) + advance(9000))
write("server", "eof_and_partial_writes", SETUP + ACCEPT + ACCEPT + ACCEPT
      + request(0, WEBSOCKET, bytes([0, 0]), session=10)
      + send(0, "one") + send(0, "two") + written(0, 7) + written(0, 1) + written(0, 300)
      + frames(0, [frame(1, blob('["up"]'))]) + eof(0) + written(0)
      + request(1, XHR_STREAMING, session=11) + written(1, 5) + send(1, "x" * 50) + eof(1)
      + written(1, 2000) + written(1)
      + bytes([3, 2]) + blob(b"GET /echo/info HTTP/1.1\r\n\r\nGET /echo HTTP/1.1\r\n")
      + eof(2) + written(2, 10) + advance(1000) + written(2) + advance(2500))
# A regression: an htmlfile response whose output waits past max_unflushed_bytes gets its
# queued messages as one batch once a write brings it under, budgeted by the messages'
# quoted size; the script string writes each `<` as `\u003c`, six times larger, so the
# output grows far past max_unflushed_bytes plus one message frame.
WIDE = bytes([200, 200, 255, 12, 5, 7, 255, 31, 64, 64, 64, 64, 64])
write("server", "regress_htmlfile_batch_escaping_past_unflushed", WIDE + ACCEPT
      + request(0, HTMLFILE, bytes([1])) + written(0)
      + send(0, "<" * 100) * 22 + written(0, 2200))
# A regression: shutdown with no connection drops the shutdown deadline from the timer queue,
# so a connection accepted later (answered 503, its output not read) is still open past
# shutdown_timeout.
write("server", "regress_shutdown_timeout_lost_when_idle", SETUP + SHUTDOWN
      + advance(7000) + ACCEPT + advance(3500))
# permessage-deflate on /echo (bit 7 of max_head), with every message compressed (bit 7 of
# max_message) and context takeover: an offer, compressed frames (flag 0x20) fragmented and
# between plain ones, replies and a broadcast compressed by the server.
DEFLATE = SETUP[:10] + bytes([64 | 0x80, 64, 64 | 0x80])
write("server", "websocket_deflate", DEFLATE + ACCEPT + ACCEPT
      + request(0, WEBSOCKET, bytes([0, 2]), session=12)
      + frames(0, [frame(0, strs(["compressed", "too"]), flags=0x20), frame(3, blob("p")),
                   frame(1, blob('"plain"')), frame(0, strs(["x" * 100]), flags=0x20)],
               split=b"\x05")
      + request(1, WEBSOCKET, bytes([0, 2]), session=13)
      + send(0, "a reply long enough to be worth compressing, and then some more")
      + send_many([0, 1], "to everyone") + written(0)
      + frames(0, [frame(5, b"\x01" + struct.pack("<H", 1000) + blob("bye"))]))
# Without context takeover (bit 7 of max_body) on the raw endpoint, and a hixie-76 offer
# that is never answered with the extension.
DEFLATE_LEAN = SETUP[:11] + bytes([64 | 0x80, 64 | 0x80])
write("server", "websocket_deflate_raw_no_takeover", DEFLATE_LEAN + ACCEPT + ACCEPT
      + request(0, WEBSOCKET, bytes([0, 3]))
      + frames(0, [frame(1, blob("raw text, compressed by the client " * 3), flags=0x20),
                   frame(1, blob(b"\xff\xff"), flags=0x10)])
      + request(1, WEBSOCKET, bytes([2]) + struct.pack("<II", 155712099, 173347027)
                + bytes([3]) + b"Tm[K T2u" + bytes([2]))
      + send_many([0, 1], "raw broadcast text that is long enough to be compressed")
      + written(0) + advance(1500))


# The security features: a leading 0xff and 8 bytes (fuzz/src/peer.rs, `Security`), then the
# usual setup. Endpoint bytes: bit 0 authorize, bits 1-2 binding (1 peer address, 2 cookie).
def security(echo, strict, conns=0, sessions=0, auth=5, linger=10, shutdown=25, flags=1):
    return bytes([0xFF, echo, strict, conns, sessions, auth, linger, shutdown, flags])


def authorize(conn, refuse=False, any_conn=False, status=0, body=b""):
    kind = (2 if refuse else 0) | (1 if any_conn else 0)
    return bytes([12, conn, kind]) + struct.pack("<H", status) + blob(body)


def profile(conn, mode, hops, cookie=0):
    return bytes([13, conn, mode]) + blob(bytes(hops)) + bytes([cookie])


def accept_from(addr):
    return bytes([14, addr])


# Held, accepted, refused, answered twice and for a stale connection, never answered (the
# timeout answers 503), then a shutdown refusing one held.
write("server", "authorize_answers", security(1 | 2, 1, auth=5) + SETUP + ACCEPT
      + request(0, XHR)
      + authorize(0)
      + written(0)
      + request(0, XHR_SEND, messages_body(["after accept"]))
      + ACCEPT + request(1, XHR, session=1)
      + authorize(0, refuse=True, status=401, body=b"who are you")
      + authorize(1, refuse=True, any_conn=True, status=200, body=b"twice")
      + written(1)
      + ACCEPT + request(2, XHR, session=2)
      + advance(1000)
      + written(2)
      + ACCEPT + request(3, WEBSOCKET, bytes([0, 0]), session=3)
      + authorize(0) + written(3)
      + ACCEPT + request(4, XHR, session=0, endpoint=1)
      + SHUTDOWN + authorize(4, any_conn=True))

# A session bound to its opener's address, behind a trusted proxy (X-Forwarded-For) and
# directly; a request forwarded for another client, and one from another address, are
# answered as if the session did not exist.
write("server", "binding_peer_forwarded", security(2, 4, flags=1) + SETUP
      + accept_from(2) + profile(0, 1, [4], cookie=1)
      + request(0, XHR)
      + written(0)
      + accept_from(4) + request(1, XHR_SEND, messages_body(["direct"]))
      + accept_from(3) + profile(2, 2, [0x87, 2])
      + request(2, XHR_SEND, messages_body(["forwarded for another"]))
      + accept_from(5) + request(3, XHR_SEND, messages_body(["ipv6"]))
      + accept_from(8) + profile(4, 3, [4, 9], cookie=1)
      + request(4, XHR_SEND, messages_body(["mapped proxy, unknown hop"]))
      + written(1) + written(2) + written(3) + written(4))

# A session bound to its cookie: the same cookie from anywhere, another or none refused.
write("server", "binding_cookie", security(4, 4, flags=0) + SETUP
      + accept_from(5) + profile(0, 0, [], cookie=1)
      + request(0, XHR, endpoint=1)
      + written(0)
      + accept_from(7) + profile(1, 0, [], cookie=3)
      + request(1, XHR_SEND, messages_body(["same cookie"]), endpoint=1)
      + profile(1, 0, [], cookie=2)
      + request(1, XHR_SEND, messages_body(["other cookie"]), endpoint=1)
      + accept_from(0)
      + request(2, XHR_SEND, messages_body(["no cookie"]), endpoint=1)
      + written(1) + written(2))

# Per-address limits: two connections and one session from an address, the third
# connection and the second session refused, another address unaffected; short linger and
# shutdown timeouts.
write("server", "per_peer_limits", security(0, 0, conns=2, sessions=1, linger=1, shutdown=2)
      + SETUP
      + accept_from(1) + accept_from(1) + accept_from(1)
      + request(0, XHR) + request(1, XHR, session=1)
      + accept_from(6) + request(3, XHR, session=2)
      + written(0) + written(1) + written(2) + written(3)
      + SHUTDOWN + advance(200))

# exchange: the same features through Server::handle_request (fuzz_targets/exchange.rs).
EX_SETUP = bytes([0x0a, 0x14, 0x40, 0x00, 0x05, 0x07, 0xc8, 0x14, 0x40, 0xc8, 0xc8, 0x40, 0x40])


def ex_request(template, session=0, flags=0, body=b"", extra=b"", accepted=False):
    return bytes([1 if accepted else 0, template, session, flags]) + blob(body) + blob(extra)


def ex_authorize(n, refuse=False, any_conn=False, status=0, body=b""):
    kind = (2 if refuse else 0) | (1 if any_conn else 0)
    return bytes([11, n, kind]) + struct.pack("<H", status) + blob(body)


def ex_profile(mode, hops, cookie=0):
    return bytes([12, mode]) + blob(bytes(hops)) + bytes([cookie])


def ex_address(addr):
    return bytes([13, addr])


def ex_written(n):
    return bytes([4, n, 0, 0])


EX_XHR, EX_XHR_SEND, EX_WS = 4, 5, 13
write("exchange", "authorize_and_bind", security(1 | 2, 4, conns=3, sessions=2, auth=3)
      + EX_SETUP
      + ex_address(2) + ex_profile(1, [4], cookie=1)
      + ex_request(EX_XHR)
      + ex_authorize(0)
      + ex_written(0)
      + ex_address(4) + ex_profile(0, [])
      + ex_request(EX_XHR_SEND, body=b'["ok"]')
      + ex_address(7)
      + ex_request(EX_XHR_SEND, body=b'["refused"]')
      + ex_request(EX_XHR, session=1)
      + ex_authorize(0, refuse=True, status=429, body=b"slow down")
      + ex_authorize(0, any_conn=True)
      + ex_request(EX_WS, session=2, accepted=True)
      + ex_authorize(0)
      + ex_request(EX_XHR, session=3)
      + bytes([7, 0x10, 0x27, 0])
      + ex_profile(0, [], cookie=2)
      + ex_request(EX_XHR, session=0x80)
      + ex_written(5) + ex_written(6))

# An authorizing endpoint's hixie-76 handshake accepted, then answered again (a refusal for
# a connection with nothing pending, which the core ignores) before its key bytes come: the
# session opens with the key bytes, as the first Accept said. The harness once let the
# second answer wipe out the first.
EX_HIXIE = 15
write("exchange", "regress_authorize_late_answer_after_hixie_accept",
      security(1, 0, auth=20) + EX_SETUP
      + ex_request(EX_HIXIE, session=1)
      + ex_authorize(0)
      + ex_authorize(0, refuse=True, any_conn=True, status=403, body=b"too late")
      + bytes([2, 0]) + blob(b"12345678")
      + bytes([8, 0]) + blob(b"after the key")
      + ex_written(0))

# A native WebSocket session whose output is stalled (32 bytes of unflushed output at most)
# is closed for a full queue with a message still queued; the client's close frame arrives
# before anything was written: the server answers it at once (RFC 6455 5.5.1) and what the
# session still queued is dropped. The harness once owed that message to the client.
write("exchange", "regress_ws_client_close_before_queue_flushed",
      bytes([0xfe, 3, 4, 3, 2, 3, 10, 25, 1, 10, 20, 64, 77])
      + ex_request(EX_WS, session=2, accepted=True)
      + bytes([8, 0]) + blob(b"a" * 100)
      + bytes([8, 0]) + blob(b"b" * 100)
      + bytes([3, 0, 2]) + blob(b""))

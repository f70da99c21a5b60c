// The end-to-end scenarios, shared by both sides: Node loads this file with require()
// and the test page loads it with a <script> tag (it then defines `sockjsE2E`).
// Each scenario drives real sockjs-client objects against one SockJS server and
// resolves to { ok, used, detail }; it never rejects and never outlives its deadline.
(function (root, factory) {
  'use strict';
  if (typeof module === 'object' && module.exports) {
    module.exports = factory();
  } else {
    root.sockjsE2E = factory();
  }
})(typeof globalThis !== 'undefined' ? globalThis : this, function () {
  'use strict';

  // Small strings a server or client might mangle: JSON escaping, frame-like text,
  // control characters, the separators JavaScript once treated as line ends, astral
  // characters (surrogate pairs on the client side), combining marks.
  const AWKWARD = [
    '',
    'a',
    ' ',
    '"',
    "'",
    '\\',
    '\\\\"',
    '"quoted" and \'single\'',
    '\\u0041 is not A, \\n is not a newline',
    '\u0000',
    Array.from({ length: 32 }, (_, i) => String.fromCharCode(i)).join('') + '\u007f',
    '\b\f\n\r\t\u000b',
    'line one\nline two\r\nline three\r',
    '\u0085\u00a0\u00ad',
    '\u2028',
    '\u2029',
    'a\u2028b\u2029c',
    '\u200c\u200d\u200e\u200f\u202a\u202e\u2060\u2063\ufeff',
    '\ufff0\ufffd\ufffe\uffff',
    '\u00e9 e\u0301 \u0300\u0333 \u4e2d\u6587 \u0627\u0644\u0639\u0631\u0628\u064a\u0629',
    '\ud83d\ude00',
    '\ud834\udd1e \ud835\udd4f \ud83d\udc4d\ud83c\udffd \ud83c\udff3\ufe0f\u200d\ud83c\udf08 \udbff\udfff',
    'o',
    'h',
    'c[3000,"Go away!"]',
    'a["nested frame"]',
    '["a","b"]',
    '{"key": [1, null, true]}',
    'null',
    '[]',
    'x'.repeat(4095),
    'y'.repeat(4096),
    'z'.repeat(4097),
  ];

  // `%` reaches sockjs-client's eventsource receiver, which runs decodeURI on each event.
  const PERCENT = ['%', '%%', '100%', '%25', '%41', '%0A', '%00', '%E2%82%AC', '%u2028', 'a%b%c%'];

  // Markup that must not escape a script block (htmlfile) or be interpreted anywhere.
  const HTML = [
    '</script>',
    '<script>window.e2eInjected = 1</script>',
    '</SCRIPT >',
    '</script\t>',
    '<!--',
    '<!-- <script>',
    '-->',
    '<![CDATA[',
    ']]>',
    '&amp; &lt;/script&gt; &#x3c;',
    '<b>bold</b>',
    '\'"><img src=x onerror="window.e2eInjected=2">',
  ];

  // Deterministic text of exactly `length` UTF-16 units, mixing ASCII with two-, three-
  // and four-byte UTF-8 characters so stream chunk boundaries fall inside characters.
  function bigText(length, seed) {
    const ascii = ['abcdefghijklmnopqrstuvwxyz', 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', '0123456789', ' .,:;!?-_()[]{}'];
    const alphabet = ascii.concat(ascii, ascii, [
      '"', '\\', '\n', '\t', '\u00e9', '\u00fc', '\u20ac', '\u4e2d', '\u2028', 'e\u0301', '\ud83d\ude00',
    ]);
    let state = seed >>> 0;
    const next = () => {
      state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
      return state;
    };
    const parts = [];
    let len = 0;
    while (len < length) {
      const group = alphabet[next() % alphabet.length];
      let piece = group.length > 2 && group.length < 30 ? group[next() % group.length] : group;
      if (len + piece.length > length) {
        piece = 'q'.repeat(length - len);
      }
      parts.push(piece);
      len += piece.length;
    }
    return parts.join('');
  }

  const LARGE = [bigText(100 * 1024, 1), 'between', bigText(300 * 1024, 2), 'after'];

  // Each scenario: the endpoint it uses, and whether websocket is on there.
  const SCENARIOS = {
    echo: { path: '/echo', websocket: true },
    echo_large: { path: '/echo', websocket: true },
    echo_percent: { path: '/echo', websocket: true },
    echo_html: { path: '/echo', websocket: true },
    close: { path: '/close', websocket: true },
    amplify: { path: '/amplify', websocket: true },
    broadcast: { path: '/broadcast', websocket: true },
    no_websocket: { path: '/disabled_websocket_echo', websocket: false },
    cookie: { path: '/cookie_needed_echo', websocket: true },
  };

  // The transport sockjs-client must pick when none is forced.
  function expectedTransport(transport, scenario) {
    if (transport !== 'auto') {
      return transport;
    }
    return SCENARIOS[scenario].websocket ? 'websocket' : 'xhr-streaming';
  }

  // A message as readable ASCII for a report: JSON-quoted, everything else as \uXXXX.
  function show(s, max) {
    const limit = max || 60;
    const q = JSON.stringify(s).replace(/[\u007f-\uffff]/g, (c) => '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0'));
    return q.length > limit ? q.slice(0, limit) + '...(' + s.length + ' units)' : q;
  }

  // Describes the first difference between two strings, for a failure report.
  function diff(expected, got) {
    if (typeof got !== 'string') {
      return 'expected ' + show(expected) + ', got non-string ' + typeof got;
    }
    let i = 0;
    while (i < expected.length && i < got.length && expected[i] === got[i]) {
      i++;
    }
    return (
      'length ' + got.length + ' (want ' + expected.length + '), first difference at unit ' + i +
      ': want ' + show(expected.slice(Math.max(0, i - 8), i + 24), 100) +
      ' got ' + show(got.slice(Math.max(0, i - 8), i + 24), 100)
    );
  }

  // Names the sent messages that never came back, for a failure report.
  function missing(sent, got) {
    const left = got.slice(0);
    const lost = [];
    sent.forEach((m, i) => {
      const at = left.indexOf(m);
      if (at < 0) {
        lost.push('#' + i + ' ' + show(m, 40));
      } else {
        left.splice(at, 1);
      }
    });
    return (
      'not echoed: ' + (lost.length ? lost.join(', ') : 'none') +
      (left.length ? '; unexpected: ' + left.map((m) => show(m, 40)).join(', ') : '')
    );
  }

  class Failure extends Error {}

  // One sockjs-client object, its events recorded, with waiting helpers bound to a deadline.
  class Client {
    constructor(SockJS, url, transport, ctx) {
      this.ctx = ctx;
      this.messages = [];
      this.opened = false;
      this.used = null;
      this.closed = null;
      this.errors = 0;
      this.wake = null;
      const options = { timeout: ctx.connectTimeoutMs };
      if (transport !== 'auto') {
        options.transports = [transport];
      }
      this.sock = new SockJS(url, null, options);
      ctx.clients.push(this);
      this.sock.onopen = () => {
        this.opened = true;
        this.used = this.sock.transport;
        // The extensions the server agreed to, as the native WebSocket under sockjs-client's
        // websocket transport reports them (null on other transports).
        const t = this.sock._transport;
        this.extensions = t && t.ws && typeof t.ws.extensions === 'string' ? t.ws.extensions : null;
        this.poke();
      };
      this.sock.onmessage = (e) => {
        this.messages.push(e.data);
        this.poke();
      };
      this.sock.onerror = () => {
        this.errors++;
      };
      this.sock.onclose = (e) => {
        this.closed = { code: e.code, reason: e.reason, wasClean: e.wasClean };
        this.poke();
      };
    }

    poke() {
      if (this.wake) {
        this.wake();
      }
    }

    // Waits until `done()` is true; fails early on an unexpected close, or at the deadline.
    async until(what, done, closeIsExpected) {
      for (;;) {
        if (done()) {
          return;
        }
        if (this.closed && !closeIsExpected) {
          throw new Failure(
            'closed while waiting for ' + what + ': ' + this.closed.code + ' ' + show(this.closed.reason) +
              (this.opened ? ' (opened via ' + this.used + ')' : ' (never opened)')
          );
        }
        await new Promise((resolve) => {
          this.wake = resolve;
        });
        this.wake = null;
        if (this.ctx.expired) {
          throw new Failure('timed out after ' + this.ctx.timeoutMs + ' ms waiting for ' + what + this.progress());
        }
      }
    }

    progress() {
      return (
        ' (' + (this.opened ? 'opened via ' + this.used : 'not opened') + ', ' + this.messages.length +
        ' messages received' + (this.closed ? ', closed ' + this.closed.code : '') + ')'
      );
    }

    async open(expected) {
      await this.until('open', () => this.opened);
      if (this.used !== expected) {
        throw new Failure('transport used is ' + this.used + ', want ' + expected);
      }
    }

    close() {
      try {
        this.sock.close();
      } catch (e) {
        // closing twice throws in sockjs-client; the scenario result stands
      }
    }
  }

  // Sends `messages` in one burst and checks the echoes arrive complete and in order.
  async function echoAll(client, messages) {
    for (const m of messages) {
      client.sock.send(m);
    }
    try {
      await client.until('echo ' + messages.length + ' messages', () => client.messages.length >= messages.length);
    } catch (e) {
      throw new Failure(e.message + '; ' + missing(messages, client.messages));
    }
    const got = client.messages.slice(0);
    for (let i = 0; i < messages.length; i++) {
      if (got[i] !== messages[i]) {
        const at = got.indexOf(messages[i]);
        throw new Failure(
          'echo #' + i + ' of ' + messages.length + ' differs (sent ' + show(messages[i]) + '): ' + diff(messages[i], got[i]) +
            (at >= 0 ? '; that message arrived as #' + at : '')
        );
      }
    }
    if (got.length !== messages.length) {
      throw new Failure('received ' + got.length + ' messages, want ' + messages.length);
    }
  }

  async function echoScenario(c, url, transport, expected, messages) {
    const client = new Client(c.SockJS, url, transport, c);
    await client.open(expected);
    await echoAll(client, messages);
    return client.used + ', ' + messages.length + ' messages';
  }

  const run = {
    echo: (c, url, t, want) => echoScenario(c, url, t, want, AWKWARD),
    echo_large: (c, url, t, want) => echoScenario(c, url, t, want, LARGE),
    echo_percent: (c, url, t, want) => echoScenario(c, url, t, want, PERCENT),
    echo_html: async (c, url, t, want) => {
      const detail = await echoScenario(c, url, t, want, HTML);
      if (typeof window !== 'undefined' && window.e2eInjected) {
        throw new Failure('a message was executed as markup (window.e2eInjected = ' + window.e2eInjected + ')');
      }
      return detail;
    },

    close: async (c, url, t, want) => {
      const client = new Client(c.SockJS, url, t, c);
      await client.until('close', () => client.closed !== null, true);
      if (!client.opened) {
        throw new Failure('closed with ' + client.closed.code + ' ' + show(client.closed.reason) + ' without opening');
      }
      if (client.used !== want) {
        throw new Failure('transport used is ' + client.used + ', want ' + want);
      }
      const { code, reason } = client.closed;
      if (code !== 3000 || reason !== 'Go away!') {
        throw new Failure('close ' + code + ' ' + show(reason) + ', want 3000 "Go away!"');
      }
      if (client.messages.length) {
        throw new Failure('unexpected messages before close: ' + show(client.messages));
      }
      return client.used + ', close 3000 "Go away!"';
    },

    amplify: async (c, url, t, want) => {
      const client = new Client(c.SockJS, url, t, c);
      await client.open(want);
      const sent = ['17', '18', '3', '0', '19', 'not a number'];
      const lengths = [131072, 262144, 8, 2, 2, 2];
      for (const m of sent) {
        client.sock.send(m);
      }
      await client.until('amplified replies', () => client.messages.length >= sent.length);
      for (let i = 0; i < sent.length; i++) {
        const got = client.messages[i];
        if (typeof got !== 'string' || got.length !== lengths[i] || !/^x*$/.test(got)) {
          throw new Failure('reply to ' + show(sent[i]) + ': ' + diff('x'.repeat(lengths[i]), got));
        }
      }
      return client.used + ', replies of ' + lengths.join('/') + ' units';
    },

    broadcast: async (c, url, t, want) => {
      // Other scenarios may share /broadcast at the same time: look only at our own tag.
      const tag = 'bc-' + Math.random().toString(36).slice(2, 10) + ':';
      const a = new Client(c.SockJS, url, t, c);
      const b = new Client(c.SockJS, url, t, c);
      await a.open(want);
      await b.open(want);
      const mine = (client) => client.messages.filter((m) => typeof m === 'string' && m.startsWith(tag));
      const steps = [
        [a, tag + 'from a \u2028 \ud83d\ude00'],
        [b, tag + 'from b "quoted"'],
        [a, tag + 'again from a'],
      ];
      for (let i = 0; i < steps.length; i++) {
        steps[i][0].sock.send(steps[i][1]);
        await a.until('broadcast #' + i + ' at client a', () => mine(a).length > i);
        await b.until('broadcast #' + i + ' at client b', () => mine(b).length > i);
      }
      const want3 = steps.map((s) => s[1]);
      for (const [name, client] of [['a', a], ['b', b]]) {
        const got = mine(client);
        if (JSON.stringify(got) !== JSON.stringify(want3)) {
          throw new Failure('client ' + name + ' received ' + show(got, 300) + ', want ' + show(want3, 300));
        }
      }
      return a.used + ', 3 messages seen by both clients';
    },

    no_websocket: async (c, url, t, want) => {
      const info = await fetchInfo(url);
      if (info.websocket !== false) {
        throw new Failure('/info says websocket: ' + JSON.stringify(info.websocket) + ', want false');
      }
      const probe = await c.probeWebSocket(url.replace(/^http/, 'ws') + '/websocket', c);
      if (!probe.refused) {
        throw new Failure('raw websocket on a websocket-disabled endpoint: ' + probe.detail);
      }
      if (t === 'websocket') {
        // sockjs-client must not even try: no transport is left, so it gives up at once.
        const client = new Client(c.SockJS, url, t, c);
        await client.until('close', () => client.closed !== null, true);
        if (client.opened || client.closed.code !== 2000) {
          throw new Failure(
            'forced websocket on a websocket-disabled endpoint: ' + (client.opened ? 'opened via ' + client.used : 'no open') +
              ', close ' + client.closed.code + ' ' + show(client.closed.reason) + ', want close 2000 without open'
          );
        }
        return 'websocket refused (' + probe.detail + '), client gave up with 2000 ' + show(client.closed.reason);
      }
      const detail = await echoScenario(c, url, t, want, ['no websocket here', '', '\u2028\ud83d\ude00', 'w'.repeat(10000)]);
      return detail + '; raw websocket ' + probe.detail;
    },

    cookie: async (c, url, t, want) => {
      const info = await fetchInfo(url);
      if (info.cookie_needed !== true) {
        throw new Failure('/info says cookie_needed: ' + JSON.stringify(info.cookie_needed) + ', want true');
      }
      return echoScenario(c, url, t, want, ['needs a cookie', '"\\', 'k'.repeat(10000)]);
    },
  };

  async function fetchInfo(url) {
    const res = await fetch(url + '/info');
    if (res.status !== 200) {
      throw new Failure('GET /info: status ' + res.status);
    }
    return res.json();
  }

  // Browser probe: a plain WebSocket to `url` must fail to open.
  function browserProbe(url, ctx) {
    return new Promise((resolve) => {
      let ws;
      const finish = (refused, detail) => {
        ctx.wakers.delete(onExpire);
        try {
          ws.close();
        } catch (e) {
          // already closed
        }
        resolve({ refused, detail });
      };
      const onExpire = () => finish(false, 'neither opened nor failed before the deadline');
      ctx.wakers.add(onExpire);
      ws = new WebSocket(url);
      ws.onopen = () => finish(false, 'it opened');
      ws.onclose = (e) => finish(true, 'refused (close ' + e.code + ')');
    });
  }

  // Runs one scenario; `opts`: { base, transport, scenario, timeoutMs, connectTimeoutMs, probeWebSocket,
  // expectExtensions } (the last: a prefix every websocket client's negotiated extensions must have).
  async function runScenario(SockJS, opts) {
    const spec = SCENARIOS[opts.scenario];
    if (!spec || !run[opts.scenario]) {
      return { ok: false, used: null, detail: 'unknown scenario ' + opts.scenario };
    }
    const ctx = {
      SockJS,
      clients: [],
      wakers: new Set(),
      expired: false,
      timeoutMs: opts.timeoutMs || 20000,
      connectTimeoutMs: opts.connectTimeoutMs || 10000,
      probeWebSocket: opts.probeWebSocket || browserProbe,
    };
    let hardStop = null;
    const timer = setTimeout(() => {
      ctx.expired = true;
      for (const w of ctx.wakers) {
        w();
      }
      for (const client of ctx.clients) {
        client.poke();
      }
      // Woken waiters fail with a precise message; this catches a scenario stuck elsewhere.
      setTimeout(() => hardStop(), 100);
    }, ctx.timeoutMs);
    const want = expectedTransport(opts.transport, opts.scenario);
    let result;
    try {
      const scenario = run[opts.scenario](ctx, opts.base.replace(/\/+$/, '') + spec.path, opts.transport, want);
      // Whichever loses the race below must not surface later as an unhandled rejection.
      scenario.catch(() => {});
      const detail = await Promise.race([
        scenario,
        new Promise((_, reject) => {
          hardStop = () =>
            reject(new Failure('timed out after ' + ctx.timeoutMs + ' ms' + ctx.clients.map((x) => x.progress()).join('')));
        }),
      ]);
      result = { ok: true, detail };
    } catch (e) {
      const where = e && e.stack ? String(e.stack).split('\n')[1] : '';
      result = {
        ok: false,
        detail: e instanceof Failure ? e.message : 'error: ' + (e && e.name ? e.name + ': ' + e.message : e) + (where ? ' (' + where.trim() + ')' : ''),
      };
    }
    clearTimeout(timer);
    result.used = ctx.clients.length ? ctx.clients[0].used : null;
    if (opts.expectExtensions && result.ok) {
      // Every client that went over websocket must have negotiated the extension.
      const ws = ctx.clients.filter((x) => x.used === 'websocket');
      const wrong = ws.find((x) => !String(x.extensions || '').startsWith(opts.expectExtensions));
      if (wrong) {
        result.ok = false;
        result.detail = 'WebSocket extensions ' + show(wrong.extensions) + ', want ' + opts.expectExtensions;
      } else if (ws.length) {
        result.detail = (result.detail ? result.detail + '; ' : '') + 'extensions: ' + ws[0].extensions;
      }
    }
    for (const client of ctx.clients) {
      client.close();
    }
    return result;
  }

  return { SCENARIOS, AWKWARD, PERCENT, HTML, LARGE, expectedTransport, runScenario };
});

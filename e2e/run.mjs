// Entry point of the end-to-end tests: starts the page server and the SockJS server(s),
// runs the Node scenarios and then the browser scenarios against each server, prints a
// summary table runtime x transport x scenario and a final `N passed, N failed` line, and
// exits non-zero on any failure. Everything it starts it stops again, by process id.
//
// Which server (first match wins):
//   SOCKJS_BASE_URL=http://127.0.0.1:8081   a server that is already running (not started here)
//   SOCKJS_SERVER_CMD='shell command'        started here; {host} {port} {sockjs_url} in it are
//                                            replaced, and HOST PORT SOCKJS_URL are in its env
//   otherwise                                target/release/sockjs-testserver, built first, once
//                                            per runtime in E2E_RUNTIMES (default: tokio async-std smol)
// E2E_COMPRESSION=1 starts the test server with --compression, labels it <runtime>+deflate,
// checks a raw handshake offering permessage-deflate gets it, and fails a browser scenario
// whose websocket client did not negotiate it.
// The same settings can be given as flags: --base-url, --server-cmd, --runtimes, --label,
// --sides, --transports, --scenarios, --timeout-ms, --concurrency, --page-port.
// See README.md for every setting.
import { spawn, spawnSync } from 'node:child_process';
import { createServer, connect } from 'node:net';
import { mkdtempSync, openSync, closeSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startPageServer } from './page-server.mjs';
import { runNodeScenarios, NODE_TRANSPORTS } from './node-side.mjs';
import { launchBrowser, runBrowserScenarios, BROWSER_TRANSPORTS } from './browser-side.mjs';
import scenarioModule from './scenarios.cjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, '..');
const ALL_SCENARIOS = Object.keys(scenarioModule.SCENARIOS);

// ---- settings ----

const FLAGS = {
  '--base-url': 'SOCKJS_BASE_URL',
  '--server-cmd': 'SOCKJS_SERVER_CMD',
  '--runtimes': 'E2E_RUNTIMES',
  '--label': 'E2E_LABEL',
  '--sides': 'E2E_SIDES',
  '--transports': 'E2E_TRANSPORTS',
  '--scenarios': 'E2E_SCENARIOS',
  '--timeout-ms': 'E2E_TIMEOUT_MS',
  '--concurrency': 'E2E_CONCURRENCY',
  '--page-port': 'E2E_PAGE_PORT',
};
const settings = { ...process.env };
for (let i = 2; i < process.argv.length; i++) {
  const arg = process.argv[i];
  const [flag, inline] = arg.split(/=(.*)/s);
  if (flag === '-h' || flag === '--help') {
    console.log(readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\nimport ')[0].replace(/^\/\/ ?/gm, ''));
    process.exit(0);
  }
  if (!FLAGS[flag]) {
    console.error(`unknown argument ${arg} (try --help)`);
    process.exit(2);
  }
  settings[FLAGS[flag]] = inline !== undefined ? inline : process.argv[++i];
}

const list = (value, all) => {
  if (!value || !value.trim()) {
    return all;
  }
  const wanted = value.split(/[\s,]+/).filter(Boolean);
  const unknown = wanted.filter((w) => !all.includes(w));
  if (unknown.length) {
    console.error(`unknown: ${unknown.join(', ')} (known: ${all.join(', ')})`);
    process.exit(2);
  }
  return all.filter((x) => wanted.includes(x));
};
const number = (name, dflt) => {
  const v = settings[name];
  if (v === undefined || v === '') {
    return dflt;
  }
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) {
    console.error(`${name} must be a number, got ${JSON.stringify(v)}`);
    process.exit(2);
  }
  return n;
};

const sides = list(settings.E2E_SIDES, ['node', 'browser']);
const scenarios = list(settings.E2E_SCENARIOS, ALL_SCENARIOS);
const transportFilter = settings.E2E_TRANSPORTS;
const allTransports = [...new Set([...NODE_TRANSPORTS, ...BROWSER_TRANSPORTS])];
const wantedTransports = list(transportFilter, allTransports);
const nodeTransports = NODE_TRANSPORTS.filter((t) => wantedTransports.includes(t));
const browserTransports = BROWSER_TRANSPORTS.filter((t) => wantedTransports.includes(t));
const timeoutMs = number('E2E_TIMEOUT_MS', 15000);
const concurrency = number('E2E_CONCURRENCY', 3);
const nodeConcurrency = number('E2E_NODE_CONCURRENCY', 3);
const startTimeoutMs = number('E2E_START_TIMEOUT_MS', 30000);
const totalTimeoutMs = number('E2E_TOTAL_TIMEOUT_MS', 20 * 60 * 1000);
const skipUnavailable = settings.E2E_SKIP_UNAVAILABLE === '1';
const compression = settings.E2E_COMPRESSION === '1';
const DEFLATE = 'permessage-deflate';

// ---- what we started, and stopping it ----

const started = new Set(); // child processes, each the leader of its own process group
const cleanups = [];
let logDir = null;

function killGroup(child, signal) {
  try {
    process.kill(-child.pid, signal);
  } catch (e) {
    // the group is gone already
  }
}

async function stopChild(child) {
  if (child.exitCode === null && child.signalCode === null) {
    killGroup(child, 'SIGTERM');
    const exited = new Promise((resolve) => child.once('exit', resolve));
    const timer = setTimeout(() => killGroup(child, 'SIGKILL'), 3000);
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
    clearTimeout(timer);
  }
  started.delete(child);
}

// Spawns `file args` as the leader of a new process group, remembered in `started`. When the
// leader exits, whatever it left in its group (children of a shell command) is killed at once.
function spawnGroup(file, args, options) {
  const child = spawn(file, args, { ...options, detached: true });
  started.add(child);
  child.once('exit', () => killGroup(child, 'SIGKILL'));
  return child;
}

let shuttingDown = false;

async function cleanupAll() {
  shuttingDown = true;
  while (started.size) {
    await stopChild([...started][0]);
  }
  for (const c of cleanups.splice(0).reverse()) {
    await c().catch(() => {});
  }
}

let interrupted = null;
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    if (interrupted) {
      return;
    }
    console.error(`\n${sig}: stopping what this run started`);
    interrupted = (async () => {
      await cleanupAll();
      console.log('interrupted: 0 passed, 1 failed');
      process.exit(130);
    })();
  });
}

// ---- servers ----

function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function fetchWithTimeout(url, ms) {
  const ctl = new AbortController();
  const t = setTimeout(() => ctl.abort(), ms);
  try {
    return await fetch(url, { signal: ctl.signal });
  } finally {
    clearTimeout(t);
  }
}

function tail(file, lines = 20) {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch (e) {
    return `(no log: ${e.message})`;
  }
}

// Starts `command` (argv array, or a shell string) in its own process group and waits until
// GET {base}/echo/info answers 200. Resolves to { base, child, log } or throws with the reason.
async function startServer(label, command, env) {
  if (shuttingDown) {
    throw new Error('the run is stopping');
  }
  logDir = logDir || mkdtempSync(path.join(tmpdir(), 'sockjs-e2e-'));
  const log = path.join(logDir, `server-${label}.log`);
  const fd = openSync(log, 'w');
  const [file, args] = typeof command === 'string' ? ['/bin/sh', ['-c', command]] : [command[0], command.slice(1)];
  const child = spawnGroup(file, args, { stdio: ['ignore', fd, fd], env: { ...process.env, ...env } });
  closeSync(fd);
  let spawnError = null;
  child.on('error', (e) => {
    spawnError = e;
  });
  const base = `${env.SCHEME || 'http'}://127.0.0.1:${env.PORT}`;
  const deadline = Date.now() + startTimeoutMs;
  while (Date.now() < deadline) {
    if (spawnError || child.exitCode !== null || child.signalCode !== null) {
      await stopChild(child);
      throw new Error(
        `server exited before serving (${spawnError ? spawnError.message : `exit ${child.exitCode ?? child.signalCode}`}); log ${log}:\n${tail(log)}`
      );
    }
    try {
      const res = await fetchWithTimeout(`${base}/echo/info`, 1000);
      if (res.status === 200) {
        await res.json();
        return { base, child, log };
      }
    } catch (e) {
      // not listening yet
    }
    await sleep(100);
  }
  await stopChild(child);
  throw new Error(`server did not answer GET /echo/info within ${startTimeoutMs} ms; log ${log}:\n${tail(log)}`);
}

const MAX_RESTARTS = 3;

// A SockJS server this run started. If it dies mid-run, the death is recorded as a failure
// and it is started again (on a new port), so one crash does not hide every later result.
class ManagedServer {
  constructor(label, commandFor, sockjsUrl, scheme = 'http') {
    this.label = label;
    this.scheme = scheme;
    this.commandFor = commandFor;
    this.sockjsUrl = sockjsUrl;
    this.deaths = [];
    this.starts = 0;
    this.pending = null;
    this.stopping = false;
    this.down = null;
  }

  async start() {
    const port = await freePort();
    const name = this.starts ? `${this.label}-restart${this.starts}` : this.label;
    this.starts++;
    const s = await startServer(name, this.commandFor(port), { HOST: '127.0.0.1', PORT: String(port), SOCKJS_URL: this.sockjsUrl, SCHEME: this.scheme });
    Object.assign(this, { child: s.child, url: s.base, log: s.log, down: null });
    s.child.once('exit', (code, signal) => this.onExit(s, code, signal));
    console.log(`[${this.label}] server pid ${s.child.pid} on ${s.base}`);
  }

  onExit(s, code, signal) {
    if (this.stopping || shuttingDown || s.child !== this.child) {
      return;
    }
    const how = `server pid ${s.child.pid} exited (${signal || `code ${code}`})`;
    this.deaths.push({ at: Date.now(), how });
    console.log(`[${this.label}] ${how} during the run; end of its log ${s.log}:\n${tail(s.log, 12)}`);
    record(this.label, { side: 'server', transport: '-', scenario: 'process', ok: false, ms: 0, detail: `${how}; log ${s.log}: ${tail(s.log, 4).replace(/\s*\n\s*/g, ' / ')}` });
    this.down = how;
    if (this.starts > MAX_RESTARTS) {
      this.down = `${how}; not restarted again after ${MAX_RESTARTS} restarts`;
      return;
    }
    this.pending = this.start()
      .catch((e) => {
        this.down = `restart failed: ${e.message.split('\n')[0]}`;
      })
      .finally(() => {
        this.pending = null;
      });
  }

  async ready() {
    if (this.pending) {
      await this.pending;
    }
  }

  base() {
    return this.url;
  }

  diedDuring(t0, t1) {
    return this.deaths.filter((d) => d.at >= t0 && d.at <= t1 + 1000);
  }

  async stop() {
    await this.ready();
    this.stopping = true;
    if (this.child) {
      await stopChild(this.child);
    }
  }
}

// For an external server: the page server must serve the client where its iframe page looks.
async function detectClientUrl(base) {
  try {
    const res = await fetchWithTimeout(`${base.replace(/\/+$/, '')}/echo/iframe.html`, 5000);
    const html = await res.text();
    const m = html.match(/<script[^>]+src="([^"]+)"/);
    return m ? new URL(m[1]) : null;
  } catch (e) {
    return null;
  }
}

// ---- results ----

const results = [];
let currentServer = null;
// Failures of the clients, not the server, in the `axum-tls` run (self-signed certificate,
// test page on plain HTTP): counted as skipped, with the reason.
function tlsClientLimit(target, r) {
  if (target !== 'axum-tls') {
    return null;
  }
  if (r.side === 'node' && r.transport === 'eventsource') {
    // sockjs-client's Node EventSource (npm eventsource) sets rejectUnauthorized itself.
    return 'the Node eventsource client always checks certificates';
  }
  if (r.side === 'browser' && r.scenario === 'cookie' && /no JSESSIONID cookie/.test(r.detail)) {
    // The page is on http://, the server on https://: cross-site by scheme, so Chromium
    // keeps no SameSite-less cookie from the server's responses.
    return 'Chromium keeps no cookie set cross-site (http page, https server)';
  }
  return null;
}

function record(target, r) {
  if (!r.ok && currentServer && r.startedAt) {
    const deaths = currentServer.diedDuring(r.startedAt, r.startedAt + r.ms);
    if (deaths.length) {
      r.detail = `${deaths.map((d) => d.how).join('; ')} meanwhile | ${r.detail}`;
    } else if (currentServer.down) {
      r.detail = `server down: ${currentServer.down} | ${r.detail}`;
    }
  }
  r.detail = String(r.detail ?? '').replace(/\s*\n\s*/g, ' / ');
  const limit = !r.ok && tlsClientLimit(target, r);
  if (limit) {
    r.status = 'skip';
    r.detail = `${limit} | ${r.detail}`;
  }
  const status = r.status || (r.ok ? 'pass' : 'fail');
  results.push({ target, ...r, status });
  if (settings.E2E_QUIET !== '1' || status === 'fail') {
    const used = r.used && r.used !== r.transport ? ` via ${r.used}` : '';
    const extra = status === 'pass' && settings.E2E_VERBOSE !== '1' ? '' : `: ${r.detail}`;
    console.log(`[${target}] ${r.side} ${r.transport} ${r.scenario}: ${status.toUpperCase()}${used} (${r.ms ?? 0} ms)${extra}`);
  }
}

function recordAll(target, status, detail) {
  for (const side of sides) {
    for (const transport of side === 'node' ? nodeTransports : browserTransports) {
      for (const scenario of scenarios) {
        record(target, { side, transport, scenario, ok: false, status, used: null, ms: 0, detail });
      }
    }
  }
}

function printSummary() {
  const cell = { pass: 'pass', fail: 'FAIL', skip: 'skip' };
  const rows = [];
  const targets = [...new Set(results.map((r) => r.target))];
  for (const target of targets) {
    for (const side of sides) {
      for (const transport of side === 'node' ? nodeTransports : browserTransports) {
        const row = [target, side, transport];
        for (const scenario of scenarios) {
          const r = results.find((x) => x.target === target && x.side === side && x.transport === transport && x.scenario === scenario);
          row.push(r ? cell[r.status] : '-');
        }
        rows.push(row);
      }
    }
    const deaths = results.filter((x) => x.target === target && x.side === 'server').length;
    if (deaths) {
      rows.push([target, 'server', 'process', `DIED x${deaths}`, ...scenarios.slice(1).map(() => '')]);
    }
  }
  const head = ['runtime', 'side', 'transport', ...scenarios];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r) => r.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd();
  console.log('');
  console.log(line(head));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const r of rows) {
    console.log(line(r));
  }
  const failed = results.filter((r) => r.status === 'fail');
  if (failed.length) {
    console.log(`\nFailures (${failed.length}):`);
    for (const r of failed) {
      console.log(`  [${r.target}] ${r.side} ${r.transport} ${r.scenario}: ${r.detail}`);
    }
  }
}

// ---- the run ----

// A raw RFC 6455 handshake on /echo offering permessage-deflate as Chromium does: resolves to
// the response head.
function deflateHandshake(base) {
  const url = new URL(`${base.replace(/\/+$/, '')}/echo/websocket`);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(url.port), url.hostname);
    let head = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error('no 101 within 5000 ms'));
    }, 5000);
    socket.on('connect', () =>
      socket.write(
        `GET ${url.pathname} HTTP/1.1\r\nHost: ${url.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n' +
          `Sec-WebSocket-Extensions: ${DEFLATE}; client_max_window_bits\r\n\r\n`
      )
    );
    socket.on('data', (d) => {
      head += d.toString('latin1');
      const end = head.indexOf('\r\n\r\n');
      if (end >= 0) {
        clearTimeout(timer);
        socket.destroy();
        resolve(head.slice(0, end));
      }
    });
    socket.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}

async function checkDeflateHandshake(target, server) {
  await server.ready();
  const t0 = Date.now();
  const r = { side: 'raw', transport: 'websocket', scenario: 'deflate_handshake', startedAt: t0 };
  try {
    const head = await deflateHandshake(server.base());
    const ext = head.match(/^sec-websocket-extensions:[ \t]*(.*)$/im);
    r.ok = head.startsWith('HTTP/1.1 101') && ext !== null && ext[1].trim() === DEFLATE;
    r.detail = `answered ${ext ? JSON.stringify(ext[1].trim()) : 'without Sec-WebSocket-Extensions'}`;
  } catch (e) {
    r.ok = false;
    r.detail = `handshake failed: ${e.message}`;
  }
  record(target, { ...r, ms: Date.now() - t0 });
}

async function runAgainst(target, server, pages, browserHandle) {
  if (compression) {
    await checkDeflateHandshake(target, server);
  }
  if (sides.includes('node') && nodeTransports.length) {
    const t0 = Date.now();
    await runNodeScenarios({ server, transports: nodeTransports, scenarios, timeoutMs, concurrency: nodeConcurrency, onResult: (r) => record(target, r) });
    console.log(`[${target}] node scenarios took ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  }
  if (sides.includes('browser') && browserTransports.length) {
    if (browserHandle.error) {
      for (const transport of browserTransports) {
        for (const scenario of scenarios) {
          record(target, { side: 'browser', transport, scenario, ok: false, used: null, ms: 0, detail: browserHandle.error });
        }
      }
      return;
    }
    const t0 = Date.now();
    await runBrowserScenarios({
      browser: browserHandle.browser,
      server,
      pageOrigin: pages.origin,
      transports: browserTransports,
      scenarios,
      timeoutMs,
      concurrency,
      expectExtensions: compression ? DEFLATE : null,
      onResult: (r) => record(target, r),
    });
    console.log(`[${target}] browser scenarios took ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  }
}

async function main() {
  const t0 = Date.now();
  const externalBase = settings.SOCKJS_BASE_URL && settings.SOCKJS_BASE_URL.replace(/\/+$/, '');

  // The page server comes first: the SockJS server is told where the client build lives.
  let pagePort = number('E2E_PAGE_PORT', 0);
  const extraClientPaths = [];
  if (externalBase) {
    const u = await detectClientUrl(externalBase);
    if (u && ['127.0.0.1', 'localhost'].includes(u.hostname) && u.port) {
      if (!pagePort) {
        pagePort = Number(u.port);
      }
      extraClientPaths.push(u.pathname);
      console.log(`server's sockjs_url is ${u.href}: serving the client there`);
    } else {
      console.log(`warning: ${externalBase}'s sockjs_url is ${u ? u.href : 'unknown'}; iframe transports need it to be this run's page server`);
    }
  }
  const pages = await startPageServer({ port: pagePort, extraClientPaths });
  cleanups.push(() => pages.close());
  console.log(`page server: ${pages.origin} (sockjs_url ${pages.clientUrl})`);

  const browserHandle = {};
  if (sides.includes('browser') && browserTransports.length) {
    try {
      const b = await launchBrowser();
      cleanups.push(() => b.close());
      browserHandle.browser = b.browser;
      console.log(`chromium ${b.version}`);
    } catch (e) {
      browserHandle.error = `chromium did not start: ${e.message.split('\n')[0]}`;
      console.log(browserHandle.error);
    }
  }

  if (externalBase) {
    const fixed = { ready: async () => {}, base: () => externalBase };
    await runAgainst(settings.E2E_LABEL || 'external', fixed, pages, browserHandle);
  } else {
    let targets;
    if (settings.SOCKJS_SERVER_CMD) {
      targets = [{ label: settings.E2E_LABEL || 'custom', command: (port) => settings.SOCKJS_SERVER_CMD
        .replaceAll('{host}', '127.0.0.1')
        .replaceAll('{port}', String(port))
        .replaceAll('{sockjs_url}', pages.clientUrl) }];
    } else {
      const runtimes = (settings.E2E_RUNTIMES || 'tokio async-std smol').split(/[\s,]+/).filter(Boolean);
      const bin = path.join(settings.CARGO_TARGET_DIR || path.join(repoRoot, 'target'), 'release', 'sockjs-testserver');
      if (settings.E2E_BUILD !== '0') {
        console.log('building: cargo build --release -p sockjs-testserver');
        const b = spawnSync('cargo', ['build', '--release', '-p', 'sockjs-testserver'], { cwd: repoRoot, stdio: 'inherit' });
        if (b.status !== 0) {
          for (const rt of runtimes) {
            recordAll(rt, 'fail', `cargo build failed (${b.error ? b.error.message : `exit ${b.status}`})`);
          }
          return;
        }
      }
      // `axum`: the tokio server through an axum Router; `axum-tls`: the same over TLS with a
      // self-signed certificate (HTTP/2 by ALPN in Chromium, which ignores certificate errors
      // here; Node's client is told not to check it).
      const how = { axum: ['--via', 'axum'], 'axum-tls': ['--via', 'axum', '--tls'] };
      if (runtimes.includes('axum-tls')) {
        process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0';
      }
      targets = runtimes.map((rt) => ({
        label: compression ? `${rt}+deflate` : rt,
        scheme: rt === 'axum-tls' ? 'https' : 'http',
        command: (port) => [
          bin, '--host', '127.0.0.1', '--port', String(port), '--sockjs-url', pages.clientUrl,
          ...(how[rt] || ['--runtime', rt]),
          ...(compression ? ['--compression'] : []),
        ],
      }));
    }
    for (const target of targets) {
      const server = new ManagedServer(target.label, target.command, pages.clientUrl, target.scheme);
      try {
        await server.start();
      } catch (e) {
        console.log(`[${target.label}] ${e.message}`);
        recordAll(target.label, skipUnavailable ? 'skip' : 'fail', `server did not start: ${e.message.split('\n')[0]}`);
        continue;
      }
      currentServer = server;
      try {
        await runAgainst(target.label, server, pages, browserHandle);
      } finally {
        currentServer = null;
        await server.stop();
      }
    }
  }
  console.log(`\ntotal time ${((Date.now() - t0) / 1000).toFixed(1)} s`);
}

// Stops everything, prints the summary and the closing count line, and exits.
let finishing = null;
function finish() {
  finishing = finishing || finishOnce();
  return finishing;
}
// What a TLS server logged (`--via axum --tls`): the protocols ALPN chose and the WebSockets
// opened by HTTP/2 extended CONNECT (RFC 8441), so the run shows what Chromium used.
function reportProtocols() {
  if (!logDir) {
    return;
  }
  for (const name of readdirSync(logDir)) {
    const text = readFileSync(path.join(logDir, name), 'utf8');
    const alpn = {};
    for (const m of text.matchAll(/^tls connection from \S+: alpn (\S+)$/gm)) {
      alpn[m[1]] = (alpn[m[1]] || 0) + 1;
    }
    const connects = (text.match(/^extended CONNECT /gm) || []).length;
    if (Object.keys(alpn).length) {
      const by = Object.entries(alpn).map(([k, v]) => `${k} ${v}`).join(', ');
      console.log(`${name}: TLS connections by ALPN: ${by}; WebSockets by extended CONNECT: ${connects}`);
    }
  }
}

async function finishOnce() {
  await cleanupAll();
  printSummary();
  const count = (st) => results.filter((r) => r.status === st).length;
  const [passed, failed, skipped] = [count('pass'), count('fail'), count('skip')];
  reportProtocols();
  if (logDir && !failed) {
    rmSync(logDir, { recursive: true, force: true });
  } else if (logDir) {
    console.log(`server logs: ${logDir}`);
  }
  console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
  process.exit(failed || !passed ? 1 : 0);
}

const watchdog = setTimeout(() => {
  console.error(`\nthe whole run exceeded E2E_TOTAL_TIMEOUT_MS=${totalTimeoutMs}; stopping`);
  results.push({ target: 'run', side: '-', transport: '-', scenario: '-', status: 'fail', detail: `exceeded E2E_TOTAL_TIMEOUT_MS=${totalTimeoutMs}` });
  finish();
}, totalTimeoutMs);
watchdog.unref();

try {
  await main();
} catch (e) {
  if (!interrupted && !finishing) {
    console.error(`run failed: ${String(e.stack || e).split('\n').slice(0, 12).join('\n')}`);
    results.push({ target: 'run', side: '-', transport: '-', scenario: '-', status: 'fail', detail: String(e.message) });
  }
}
if (interrupted) {
  await interrupted; // exits
}
await finish();

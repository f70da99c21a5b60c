// Runs the scenarios in this Node process with sockjs-client's Node transports: the fast loop,
// no browser.
import { createRequire } from 'node:module';
import { request } from 'node:http';
import { randomBytes } from 'node:crypto';

const require = createRequire(import.meta.url);
const SockJS = require('sockjs-client');
const { runScenario } = require('./scenarios.cjs');

/** Transports sockjs-client 1.6 offers in Node ('auto' forces none). */
export const NODE_TRANSPORTS = ['websocket', 'xhr-streaming', 'xhr-polling', 'eventsource', 'auto'];

// A plain WebSocket handshake to `url` must not be answered with 101.
function probeWebSocket(url, ctx) {
  return new Promise((resolve) => {
    const u = new URL(url.replace(/^ws/, 'http'));
    const req = request({
      host: u.hostname,
      port: u.port,
      path: u.pathname,
      headers: {
        Connection: 'Upgrade',
        Upgrade: 'websocket',
        'Sec-WebSocket-Key': randomBytes(16).toString('base64'),
        'Sec-WebSocket-Version': '13',
      },
    });
    const waitMs = Math.min(5000, ctx.timeoutMs);
    const timer = setTimeout(() => finish(false, `no answer within ${waitMs} ms`), waitMs);
    function finish(refused, detail) {
      clearTimeout(timer);
      req.destroy();
      resolve({ refused, detail });
    }
    req.on('upgrade', (res) => finish(false, `upgraded with ${res.statusCode}`));
    req.on('response', (res) => {
      res.resume();
      finish(res.statusCode !== 101, `refused with ${res.statusCode}`);
    });
    req.on('error', (e) => finish(true, `refused (${e.code || e.message})`));
    req.end();
  });
}

// Runs every (transport, scenario) pair against `server` ({ ready(), base() }), `concurrency`
// at a time; calls `onResult` for each.
export async function runNodeScenarios({ server, transports, scenarios, timeoutMs, concurrency, onResult }) {
  // An error thrown inside sockjs-client outside any promise is charged to every scenario
  // running at that moment.
  const running = new Set();
  const onStray = (e) => {
    const what = String(e && e.stack ? e.stack.split('\n')[0] : e);
    for (const job of running) {
      job.stray.push(what);
    }
  };
  process.on('uncaughtException', onStray);
  process.on('unhandledRejection', onStray);
  const queue = [];
  for (const transport of transports) {
    for (const scenario of scenarios) {
      queue.push({ transport, scenario, stray: [] });
    }
  }
  const worker = async () => {
    for (let job = queue.shift(); job; job = queue.shift()) {
      await server.ready();
      running.add(job);
      const started = Date.now();
      const { transport, scenario } = job;
      const r = await runScenario(SockJS, { base: server.base(), transport, scenario, timeoutMs, probeWebSocket });
      // Let the clients' close handshakes run before charging stray errors.
      await new Promise((resolve) => setTimeout(resolve, 20));
      running.delete(job);
      if (job.stray.length) {
        r.ok = false;
        r.detail = `uncaught in sockjs-client: ${job.stray.join('; ')} | ${r.detail}`;
      }
      onResult({ side: 'node', transport, scenario, startedAt: started, ms: Date.now() - started, ...r });
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.max(1, concurrency) }, worker));
  } finally {
    process.off('uncaughtException', onStray);
    process.off('unhandledRejection', onStray);
  }
}

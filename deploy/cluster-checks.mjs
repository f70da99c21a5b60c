// Cluster checks through a load balancer in front of several test server nodes (started by
// deploy/local-cluster.sh), with sockjs-client in Node:
//
//   routing    every session of every Node transport lives on exactly one node, and the
//              sessions spread over more than one node
//   broadcast  clients of /broadcast on different nodes each see every message of every
//              client exactly once, in each publisher's order (needs the nodes' --redis)
//   redis      redis-server stopped and started again: cross-node broadcast resumes without
//              restarting a node, no message is seen twice or out of order
//   kill       one node killed (SIGKILL) while echo clients on every node send numbered
//              messages: exactly the sessions of that node close, their clients reconnect and
//              land on a live node, every other client sees every echo once, in order
//
//   node deploy/cluster-checks.mjs [CHECK...]     (default: routing broadcast redis kill)
//
// Which node holds a session: a node answers an `xhr_send` of `[]` (no message) for a
// session it holds with 204, and with 404 for one it does not know; each node is asked
// directly (for WebSocket sessions, see ownerOf). Prints `pass NAME` or `FAIL NAME: why` per check, then `N passed, N failed`;
// exits 1 on any failure. Every wait has a deadline.
//
// Env: CLUSTER_STATE (local-cluster.sh's state dir), CLUSTER_PORT and CLUSTER_NODES (what
// local-cluster.sh recorded there, else 8090 and 3), CLUSTER_SCRIPT (deploy/local-cluster.sh, for
// kill-node / restart-redis / status), CHECK_TIMEOUT_MS (per wait, 15000).
import { createRequire } from 'node:module';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, '..', 'e2e', 'package.json'));
const SockJS = require('sockjs-client');

// The settings local-cluster.sh recorded in CLUSTER_STATE, where not given.
const recorded = (name) => {
  try {
    return readFileSync(path.join(process.env.CLUSTER_STATE, name), 'utf8').trim();
  } catch {
    return undefined;
  }
};
const port = Number(process.env.CLUSTER_PORT || recorded('port') || 8090);
const nodeCount = Number(process.env.CLUSTER_NODES || recorded('nodes') || 3);
const script = process.env.CLUSTER_SCRIPT || path.join(here, 'local-cluster.sh');
const waitMs = Number(process.env.CHECK_TIMEOUT_MS || 15000);
const lbUrl = `http://127.0.0.1:${port}`;
const nodeUrls = Array.from({ length: nodeCount }, (_, i) => `http://127.0.0.1:${port + i + 1}`);
const TRANSPORTS = ['websocket', 'xhr-streaming', 'xhr-polling', 'eventsource'];

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const newId = () => randomBytes(9).toString('base64url').replace(/[-_]/g, 'x');

class CheckError extends Error {}
function check(ok, why) {
  if (!ok) throw new CheckError(why);
}

/** Waits until `cond()` holds, up to `ms`; throws `why()` then. */
async function until(cond, why, ms = waitMs) {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new CheckError(typeof why === 'function' ? why() : why);
    await sleep(20);
  }
}

function cluster(...args) {
  try {
    return execFileSync('bash', [script, ...args], { encoding: 'utf8', env: process.env });
  } catch (e) {
    // `status` exits 1 when a recorded process is dead (after `kill`): its output still counts.
    if (args[0] === 'status' && typeof e.stdout === 'string') return e.stdout;
    throw e;
  }
}

/** The indexes (0-based) of the nodes that hold session `sid` of `prefix`. */
async function owners(prefix, sid) {
  const found = [];
  await Promise.all(
    nodeUrls.map(async (base, i) => {
      try {
        const res = await fetch(`${base}${prefix}/000/${sid}/xhr_send`, {
          method: 'POST',
          body: '[]',
          headers: { 'Content-Type': 'text/plain' },
          signal: AbortSignal.timeout(3000),
        });
        await res.arrayBuffer();
        if (res.status === 204) found.push(i);
      } catch {
        // a dead node holds nothing
      }
    }),
  );
  return found.sort();
}

/**
 * The node that holds `client`'s session: exactly one must. A WebSocket session takes no
 * `xhr_send`; for it a shadow session with the same server and session id is opened through
 * the load balancer on `/amplify` (the same routing key, so the same node) and looked for.
 */
async function ownerOf(client) {
  let prefix = client.prefix;
  if (client.transport === 'websocket') {
    prefix = '/amplify';
    // A shadow opened by an earlier call may still be there (it expires 5 s after its poll).
    const o = await owners(prefix, client.sid);
    if (o.length === 1) return o[0];
    const res = await fetch(`${lbUrl}${prefix}/${client.sock._server}/${client.sid}/xhr`, {
      method: 'POST',
      signal: AbortSignal.timeout(3000),
    });
    const body = await res.text();
    check(res.status === 200 && body === 'o\n', `${client.name}: shadow session: ${res.status} ${body}`);
  }
  const o = await owners(prefix, client.sid);
  check(o.length === 1, `${client.name}: session ${client.sid} held by nodes [${o}] (want exactly one)`);
  return o[0];
}

/**
 * One sockjs-client session through the load balancer, with a session id we know; records
 * what it receives and how it closed.
 */
class Client {
  constructor(name, prefix, transport) {
    this.name = name;
    this.prefix = prefix;
    this.transport = transport;
    this.received = [];
    this.closed = null;
    this.opened = false;
    this.sid = newId();
    this.sock = new SockJS(lbUrl + prefix, null, { transports: [transport], sessionId: () => this.sid });
    this.sock.onopen = () => {
      this.opened = true;
    };
    this.sock.onmessage = (e) => {
      this.received.push(e.data);
      if (this.onmessage) this.onmessage(e.data);
    };
    this.sock.onclose = (e) => {
      this.closed = { code: e.code, reason: e.reason, at: Date.now() };
    };
  }
  async open() {
    await until(() => this.opened || this.closed, `${this.name} (${this.transport}): did not open`);
    check(this.opened, `${this.name} (${this.transport}): closed before open: ${JSON.stringify(this.closed)}`);
    check(this.sock.transport === this.transport, `${this.name}: transport ${this.sock.transport}`);
  }
  send(m) {
    this.sock.send(m);
  }
  close() {
    if (!this.closed) this.sock.close();
  }
}

async function openAll(clients) {
  await Promise.all(clients.map((c) => c.open()));
}

/** Clients of `prefix`, one per transport per round, until they sit on 2+ nodes (bounded). */
async function spreadClients(prefix, perTransport, label) {
  const clients = [];
  for (let round = 0; round < 6; round++) {
    const batch = [];
    for (let k = 0; k < perTransport; k++) {
      for (const t of TRANSPORTS) batch.push(new Client(`${label}${clients.length + batch.length}`, prefix, t));
    }
    clients.push(...batch);
    await openAll(batch);
    for (const c of batch) c.node = await ownerOf(c);
    if (new Set(clients.map((c) => c.node)).size >= Math.min(2, nodeCount)) return clients;
  }
  throw new CheckError(`${clients.length} sessions all on node ${clients[0].node + 1}`);
}

/** Every client must see `expected` (publisher -> messages in order) exactly once, in order. */
function verifyBroadcast(clients, tag, expected) {
  for (const c of clients) {
    const mine = c.received.filter((m) => m.startsWith(tag));
    const seen = new Set();
    for (const m of mine) {
      check(!seen.has(m), `${c.name} (node ${c.node + 1}) saw ${m} twice`);
      seen.add(m);
    }
    for (const [pub, msgs] of expected) {
      const got = mine.filter((m) => m.startsWith(`${tag}:${pub}:`));
      check(
        got.length === msgs.length && got.every((m, i) => m === msgs[i]),
        `${c.name} (node ${c.node + 1}) got from ${pub}: [${got}], want [${msgs}]`,
      );
    }
  }
}

function countTagged(clients, tag) {
  return clients.reduce((n, c) => n + c.received.filter((m) => m.startsWith(tag)).length, 0);
}

// ---- the checks

async function routing() {
  const clients = await spreadClients('/echo', 2, 'r');
  const tag = `rt${newId()}`;
  for (const c of clients) c.send(`${tag}:${c.name}`);
  await until(
    () => clients.every((c) => c.received.includes(`${tag}:${c.name}`)),
    () => `echo missing on ${clients.filter((c) => !c.received.includes(`${tag}:${c.name}`)).map((c) => c.name)}`,
  );
  // Still on the same node after traffic.
  for (const c of clients) check((await ownerOf(c)) === c.node, `${c.name} moved`);
  const nodes = new Set(clients.map((c) => c.node));
  clients.forEach((c) => c.close());
  return `${clients.length} sessions, each on one node; nodes used: ${[...nodes].map((n) => n + 1).sort()}`;
}

async function broadcast() {
  const clients = await spreadClients('/broadcast', 1, 'b');
  const tag = `bc${newId()}`;
  const expected = new Map();
  for (const c of clients) {
    const msgs = [1, 2, 3].map((i) => `${tag}:${c.name}:${i}`);
    expected.set(c.name, msgs);
    msgs.forEach((m) => c.send(m));
  }
  const want = clients.length * clients.length * 3;
  await until(() => countTagged(clients, tag) >= want, () => `${countTagged(clients, tag)} of ${want} deliveries`);
  await sleep(300); // a duplicate would come now
  verifyBroadcast(clients, tag, expected);
  clients.forEach((c) => c.close());
  const nodes = [...new Set(clients.map((c) => c.node + 1))].sort();
  return `${clients.length} clients on nodes ${nodes}, ${want} deliveries, each once, in order`;
}

async function redis() {
  // Two websocket clients on different nodes.
  const clients = [];
  for (let i = 0; i < 12 && new Set(clients.map((c) => c.node)).size < 2; i++) {
    const c = new Client(`x${i}`, '/broadcast', 'websocket');
    await c.open();
    c.node = await ownerOf(c);
    if (clients.some((o) => o.node === c.node)) c.close();
    else clients.push(c);
  }
  check(clients.length === 2, 'could not place two clients on different nodes');
  const [a, b] = clients;
  const nodePids = () => cluster('status').split('\n').filter((l) => l.startsWith('node')).join('\n');
  const pidsBefore = nodePids();
  const tag = `rd${newId()}`;
  a.send(`${tag}:a:0`);
  await until(() => b.received.includes(`${tag}:a:0`), 'no cross-node delivery before the restart');
  cluster('restart-redis');
  // Publish every 200 ms until b sees one of them again (the nodes reconnect with backoff).
  let n = 1;
  const sent = [`${tag}:a:0`];
  const resumeBy = Date.now() + 30000;
  let resumed = false;
  while (Date.now() < resumeBy) {
    const m = `${tag}:a:${n++}`;
    a.send(m);
    sent.push(m);
    await sleep(200);
    if (b.received.some((x) => x.startsWith(`${tag}:a:`) && x !== `${tag}:a:0`)) {
      resumed = true;
      break;
    }
  }
  check(resumed, `no cross-node delivery within 30 s of the restart (${n - 1} published)`);
  const resumedAfter = n - 1;
  // Now every further message must reach both, once, in order.
  const after = [];
  for (let i = 0; i < 10; i++) {
    const m = `${tag}:a:${n++}`;
    a.send(m);
    sent.push(m);
    after.push(m);
  }
  await until(
    () => after.every((m) => a.received.includes(m) && b.received.includes(m)),
    () => `after the restart: a has ${after.filter((m) => a.received.includes(m)).length}/10, b ${after.filter((m) => b.received.includes(m)).length}/10`,
  );
  await sleep(300);
  for (const c of clients) {
    const got = c.received.filter((m) => m.startsWith(`${tag}:a:`));
    check(new Set(got).size === got.length, `${c.name} saw a message twice: [${got}]`);
    const idx = got.map((m) => sent.indexOf(m));
    check(idx.every((v, i) => i === 0 || v > idx[i - 1]), `${c.name} got them out of order: [${got}]`);
    check(!c.closed, `${c.name} closed: ${JSON.stringify(c.closed)}`);
  }
  check(nodePids() === pidsBefore, `a node was restarted: ${pidsBefore} -> ${nodePids()}`);
  clients.forEach((c) => c.close());
  const lost = sent.length - b.received.filter((m) => m.startsWith(`${tag}:a:`)).length;
  return `resumed after ${resumedAfter} publishes (${lost} not seen across nodes during the outage), nodes not restarted`;
}

/** An echo client that keeps WINDOW numbered messages in flight and checks each echo. */
function pump(c, stopAt) {
  const WINDOW = 4;
  c.sentN = 0;
  c.gotN = 0;
  c.errors = [];
  const fill = () => {
    while (!c.closed && c.sentN - c.gotN < WINDOW && Date.now() < stopAt()) c.send(`${c.name}#${c.sentN++}`);
  };
  c.onmessage = (m) => {
    const want = `${c.name}#${c.gotN}`;
    if (m !== want) c.errors.push(`got ${m}, want ${want}`);
    else c.gotN++;
    setTimeout(fill, 5);
  };
  fill();
}

async function kill() {
  check(nodeCount >= 2, 'needs 2 nodes');
  const clients = await spreadClients('/echo', 2, 'k');
  let stopping = Infinity;
  const stopAt = () => stopping;
  clients.forEach((c) => pump(c, stopAt));
  await sleep(1500);
  // The victim: the node with the most of these sessions (others have some: spreadClients).
  const per = new Map();
  for (const c of clients) per.set(c.node, (per.get(c.node) || 0) + 1);
  const victim = [...per.entries()].sort((x, y) => y[1] - x[1])[0][0];
  const onVictim = clients.filter((c) => c.node === victim);
  const others = clients.filter((c) => c.node !== victim);
  const progressBefore = others.map((c) => c.gotN);
  cluster('kill-node', String(victim + 1));
  const killedAt = Date.now();
  await until(
    () => onVictim.every((c) => c.closed),
    () => `not closed after the kill: ${onVictim.filter((c) => !c.closed).map((c) => `${c.name} (${c.transport})`)}`,
  );
  const closeMs = Math.max(...onVictim.map((c) => c.closed.at - killedAt));
  // Their clients reconnect (new sessions, the same transport) and land on a live node.
  const again = onVictim.map((c) => new Client(`${c.name}'`, '/echo', c.transport));
  await openAll(again);
  for (const c of again) {
    c.node = await ownerOf(c);
    check(c.node !== victim, `${c.name} reconnected onto the killed node`);
  }
  again.forEach((c) => pump(c, stopAt));
  await sleep(2000);
  stopping = Date.now();
  const live = [...others, ...again];
  await until(
    () => live.every((c) => c.gotN === c.sentN || c.closed),
    () => `echoes outstanding: ${live.filter((c) => c.gotN !== c.sentN).map((c) => `${c.name} ${c.gotN}/${c.sentN}`)}`,
  );
  for (const c of live) {
    check(!c.closed, `${c.name} (node ${c.node + 1}, not killed) closed: ${JSON.stringify(c.closed)}`);
    check(c.errors.length === 0, `${c.name} (node ${c.node + 1}): ${c.errors.slice(0, 3).join('; ')}`);
  }
  others.forEach((c, i) => check(c.gotN > progressBefore[i], `${c.name} made no progress after the kill`));
  for (const c of again) check(c.gotN > 0, `${c.name} echoed nothing after reconnecting`);
  live.forEach((c) => c.close());
  onVictim.forEach((c) => c.close());
  const echoes = others.reduce((n, c) => n + c.gotN, 0);
  return (
    `killed node ${victim + 1}: its ${onVictim.length} sessions closed within ${closeMs} ms ` +
    `(${[...new Set(onVictim.map((c) => c.closed.code))]}), reconnected onto nodes ` +
    `${[...new Set(again.map((c) => c.node + 1))].sort()}; ${others.length} other sessions: ${echoes} echoes, none lost or repeated`
  );
}

const CHECKS = { routing, broadcast, redis, kill };
const names = process.argv.slice(2).length ? process.argv.slice(2) : Object.keys(CHECKS);
let passed = 0;
let failed = 0;
for (const name of names) {
  const fn = CHECKS[name];
  if (!fn) {
    console.log(`FAIL ${name}: no such check (${Object.keys(CHECKS).join(', ')})`);
    failed++;
    continue;
  }
  const t0 = Date.now();
  try {
    const detail = await fn();
    console.log(`pass ${name} (${Date.now() - t0} ms): ${detail}`);
    passed++;
  } catch (e) {
    console.log(`FAIL ${name} (${Date.now() - t0} ms): ${e instanceof CheckError ? e.message : e.stack}`);
    failed++;
  }
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);

// The page server: serves the test page, the scenarios and the sockjs-client build on an
// origin of its own, so the SockJS server is cross-origin to the page (CORS and the iframe
// transports run as in production) and the server's iframe page can load the client from here.
//
// Standalone: node page-server.mjs [PORT]   (127.0.0.1 only; 0 or nothing picks a free port)
import { createServer } from 'node:http';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const here = path.dirname(fileURLToPath(import.meta.url));
const clientDir = path.join(here, 'node_modules', 'sockjs-client', 'dist');

/** Path of the sockjs-client build on the page server; the SockJS server's sockjs_url points here. */
export const CLIENT_PATH = '/sockjs.min.js';

// The test page: sockjs-client and the scenarios, both from this server.
const TEST_PAGE = [
  '<!doctype html>',
  '<html><head><meta charset="utf-8"><title>sockjs-rs e2e</title>',
  `<script src="${CLIENT_PATH}"></script>`,
  '<script src="/scenarios.cjs"></script>',
  '</head><body><p>sockjs-rs end-to-end test page</p></body></html>',
  '',
].join('\n');

const JS = 'application/javascript; charset=UTF-8';

// Starts the page server on 127.0.0.1:`port` (0 = any free port). `extraClientPaths` are
// further paths that serve the client build, for a server whose sockjs_url uses another path.
export async function startPageServer({ port = 0, extraClientPaths = [] } = {}) {
  const files = {
    [CLIENT_PATH]: [path.join(clientDir, 'sockjs.min.js'), JS],
    '/sockjs.min.js.map': [path.join(clientDir, 'sockjs.min.js.map'), 'application/json'],
    '/scenarios.cjs': [path.join(here, 'scenarios.cjs'), JS],
  };
  for (const p of extraClientPaths) {
    files[p] = files[CLIENT_PATH];
  }
  const body = {};
  for (const [p, [file, type]] of Object.entries(files)) {
    body[p] = [await readFile(file), type];
  }
  body['/'] = [Buffer.from(TEST_PAGE), 'text/html; charset=UTF-8'];

  const server = createServer((req, res) => {
    const url = new URL(req.url, 'http://127.0.0.1');
    const hit = req.method === 'GET' || req.method === 'HEAD' ? body[url.pathname] : undefined;
    if (!hit) {
      res.writeHead(404, { 'Content-Type': 'text/plain; charset=UTF-8' });
      res.end('not found\n');
      return;
    }
    res.writeHead(200, {
      'Content-Type': hit[1],
      'Content-Length': hit[0].length,
      'Cache-Control': 'no-store',
    });
    res.end(req.method === 'HEAD' ? undefined : hit[0]);
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  const actual = server.address().port;
  return {
    port: actual,
    origin: `http://127.0.0.1:${actual}`,
    clientUrl: `http://127.0.0.1:${actual}${CLIENT_PATH}`,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const pages = await startPageServer({ port: Number(process.argv[2] || 0) });
  console.log(`page server on ${pages.origin}; sockjs_url: ${pages.clientUrl}`);
}

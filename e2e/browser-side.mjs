// Runs the scenarios in headless Chromium (Debian's, driven by playwright-core). Each scenario
// gets a fresh browser context (own cookie jar, own frames) and a page from the page server,
// which is cross-origin to the SockJS server, as a production page would be.
import { chromium } from 'playwright-core';

/** Transports sockjs-client 1.6 offers in Chromium ('auto' forces none). */
export const BROWSER_TRANSPORTS = [
  'websocket',
  'xhr-streaming',
  'xhr-polling',
  'eventsource',
  'iframe-eventsource',
  'htmlfile',
  'iframe-htmlfile',
  'iframe-xhr-polling',
  'jsonp-polling',
  'auto',
];

// sockjs-client enables plain htmlfile only when the page shares the server's origin (across
// origins it picks iframe-htmlfile). For that transport the host page is the server's own
// iframe page, which loads sockjs-client from sockjs_url; the scenarios are added to it.
const SAME_ORIGIN_TRANSPORTS = new Set(['htmlfile']);
const SAME_ORIGIN_PAGE = '/echo/iframe.html';

const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  // The `axum-tls` run's server has a self-signed certificate.
  '--ignore-certificate-errors',
];

/** Starts Chromium; `close()` ends it. */
export async function launchBrowser(executablePath = process.env.CHROMIUM || '/usr/bin/chromium') {
  // playwright-core gives the browser a fresh temporary profile (--user-data-dir) of its own
  // and removes it on close; it refuses a --user-data-dir argument from us. Each scenario
  // also gets its own incognito-like context.
  // Signals are run.mjs's to handle: it stops the browser along with everything else.
  const browser = await chromium.launch({
    executablePath,
    headless: true,
    args: CHROMIUM_ARGS,
    timeout: 30000,
    handleSIGINT: false,
    handleSIGTERM: false,
    handleSIGHUP: false,
  });
  return {
    browser,
    version: browser.version(),
    close: () => Promise.race([browser.close().catch(() => {}), new Promise((r) => setTimeout(r, 10000))]),
  };
}

// Runs one scenario in a fresh context; never hangs past timeoutMs plus a margin.
async function runOne(browser, { server, pageOrigin, transport, scenario, timeoutMs, expectExtensions }) {
  await server.ready();
  const base = server.base();
  const started = Date.now();
  const context = await browser.newContext();
  const pageErrors = [];
  let hardTimer;
  try {
    const page = await context.newPage();
    page.on('pageerror', (e) => pageErrors.push(`pageerror: ${e.message}`));
    page.on('console', (m) => {
      if (m.type() === 'error' && !/\/favicon\.ico$/.test(m.location().url || '')) {
        pageErrors.push(`console: ${m.text()}`);
      }
    });
    if (SAME_ORIGIN_TRANSPORTS.has(transport)) {
      await page.goto(base.replace(/\/+$/, '') + SAME_ORIGIN_PAGE, { waitUntil: 'load', timeout: timeoutMs });
      await page.addScriptTag({ url: `${pageOrigin}/scenarios.cjs` });
    } else {
      await page.goto(`${pageOrigin}/`, { waitUntil: 'load', timeout: timeoutMs });
    }
    const work = page.evaluate(
      (opts) => window.sockjsE2E.runScenario(window.SockJS, opts),
      { base, transport, scenario, timeoutMs, expectExtensions }
    );
    const hard = new Promise((resolve) => {
      hardTimer = setTimeout(
        () => resolve({ ok: false, used: null, detail: `page did not answer within ${timeoutMs + 10000} ms` }),
        timeoutMs + 10000
      );
    });
    const r = await Promise.race([work, hard]);
    work.catch(() => {});
    if (r.ok && scenario === 'cookie' && r.used !== 'websocket') {
      // Every HTTP session request on a cookie_needed endpoint sets JSESSIONID.
      const cookies = await context.cookies(base);
      const jsid = cookies.find((c) => c.name === 'JSESSIONID');
      if (!jsid) {
        r.ok = false;
        r.detail = `no JSESSIONID cookie set (cookies: ${JSON.stringify(cookies.map((c) => c.name))}) | ${r.detail}`;
      } else {
        r.detail += `; JSESSIONID=${jsid.value} path=${jsid.path}`;
      }
    }
    if (!r.ok && pageErrors.length) {
      r.detail += ` | ${pageErrors.slice(0, 3).join(' | ')}`;
    }
    return { side: 'browser', transport, scenario, startedAt: started, ms: Date.now() - started, ...r };
  } catch (e) {
    const detail = `driver error: ${e.message.split('\n')[0]}${pageErrors.length ? ' | ' + pageErrors.slice(0, 3).join(' | ') : ''}`;
    return { side: 'browser', transport, scenario, startedAt: started, ms: Date.now() - started, ok: false, used: null, detail };
  } finally {
    clearTimeout(hardTimer);
    await Promise.race([context.close().catch(() => {}), new Promise((r) => setTimeout(r, 5000))]);
  }
}

// Runs every (transport, scenario) pair against `server` ({ ready(), base() }), `concurrency`
// at a time; calls `onResult` for each.
export async function runBrowserScenarios({ browser, server, pageOrigin, transports, scenarios, timeoutMs, concurrency, expectExtensions, onResult }) {
  const queue = [];
  for (const transport of transports) {
    for (const scenario of scenarios) {
      queue.push({ server, pageOrigin, transport, scenario, timeoutMs, expectExtensions });
    }
  }
  const worker = async () => {
    for (let job = queue.shift(); job; job = queue.shift()) {
      onResult(await runOne(browser, job));
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, concurrency) }, worker));
}

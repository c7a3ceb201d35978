// A real browser (headless Chromium, driven by playwright-core) on origin A
// talks to three iocluster nodes behind HAProxy on origin B, HAProxy
// keeping each session on one node with the `io` cookie (`cookie io prefix
// indirect nocache`), the nodes synced through a redis-server of the test.
//
// Origins: A is http://127.0.0.1:<static server>, B http://127.0.0.1:<HAProxy>.
// A different port makes a different origin, so every Socket.IO request is
// a real cross-origin request (CORS applies; the XHRs send and store
// cookies only with `withCredentials: true`, and only if the server answers
// `Access-Control-Allow-Credentials: true`). The host is the same, so the
// two are the same *site* (ports do not count for sites nor for cookies):
// the `io` cookie (SameSite=Lax, iocluster's and Node's default) is stored
// and sent. Case 3 shows the other choice, a page on `localhost` against
// `127.0.0.1` (two sites): there the cookie is a third-party cookie and the
// browser refuses it even with credentials.
//
// 1. withCredentials: true, nodes with --cors-credentials: the session
//    connects over polling, echoes, upgrades to WebSocket, echoes; every
//    request of it reached one node.
// 2. the same page without withCredentials: the browser ignores the cookie,
//    HAProxy balances the session's next requests to other nodes, whose
//    masters (or workers, on a kept-alive connection) answer 400 "Session
//    ID unknown" with the CORS headers, as Node does; the browser reports
//    the 400 and the client gets a connect_error.
// 3. withCredentials: true from another site: the cookie is refused, and
//    the session breaks as in 2.
// 4. withCredentials: true against a node started without
//    --cors-credentials: the browser blocks the handshake's response.
//
// Screenshots of the pages end up in <cargo target dir>/browser-cors/.
// Needs /usr/bin/chromium and haproxy (Debian packages `chromium`,
// `haproxy`) and redis-server.

import assert from "node:assert/strict";
import { mkdir } from "node:fs/promises";
import path from "node:path";
import { after, before, describe, test } from "node:test";

import { chromium } from "playwright-core";

import { cargoTargetDir, startHaproxy, startStaticServer } from "./lb-support.js";
import { REPO_ROOT, startCluster, startRedis } from "./processes.js";

const CHROMIUM = "/usr/bin/chromium";
const FIXTURES = path.join(REPO_ROOT, "tests/js/test/fixtures");
const CLIENT_DIST = path.join(REPO_ROOT, "tests/js/node_modules/socket.io-client/dist");
/** Where the screenshots go. */
const SCREENSHOTS = path.join(cargoTargetDir(), "browser-cors");
/** The page runs its steps with 5 s timeouts each; the whole run is short. */
const PAGE_TIMEOUT_MS = 15_000;
/** Starting Redis, four iocluster masters, HAProxy and Chromium. */
const SETUP_TIMEOUT_MS = 30_000;
const NODES = 3;

describe("a browser page on another origin, through HAProxy on the io cookie", () => {
  let redis;
  let pageServer;
  /** The three nodes behind HAProxy, n1..n3. */
  let nodes = [];
  /** A node without --cors-credentials, reached directly. */
  let strictNode;
  /** The page's server under another site's name: http://localhost:<port>. */
  let crossSiteOrigin;
  let haproxy;
  let browser;
  /** Worker pid → HAProxy server name of its node. */
  const nodeOfWorker = new Map();

  before(
    async () => {
      pageServer = await startStaticServer({
        "/": [path.join(FIXTURES, "cors-page.html"), "text/html; charset=utf-8"],
        "/cors-page.js": [path.join(FIXTURES, "cors-page.js"), "text/javascript"],
        "/socket.io.min.js": [path.join(CLIENT_DIST, "socket.io.min.js"), "text/javascript"],
        "/socket.io.min.js.map": [
          path.join(CLIENT_DIST, "socket.io.min.js.map"),
          "application/json",
        ],
      });
      redis = await startRedis();
      crossSiteOrigin = pageServer.origin.replace("127.0.0.1", "localhost");
      const cors = ["--cookie", "--cors-origin", pageServer.origin];
      const started = await Promise.allSettled([
        ...Array.from({ length: NODES }, () =>
          startCluster({
            balance: "least-connection",
            workers: 2,
            args: [
              "--redis",
              redis.redisUrl,
              ...cors,
              "--cors-origin",
              crossSiteOrigin,
              "--cors-credentials",
            ],
          }),
        ),
        startCluster({ balance: "least-connection", workers: 1, args: cors }),
        chromium.launch({ executablePath: CHROMIUM }),
      ]);
      const values = started.map((s) => (s.status === "fulfilled" ? s.value : undefined));
      nodes = values.slice(0, NODES);
      strictNode = values[NODES];
      browser = values[NODES + 1];
      const failure = started.find((s) => s.status === "rejected");
      if (failure) throw failure.reason;

      for (const [i, node] of nodes.entries()) {
        for (const worker of (await node.status()).workers) {
          nodeOfWorker.set(worker.pid, `n${i + 1}`);
        }
      }
      const env = {};
      nodes.forEach((node, i) => {
        env[`IOC_NODE${i + 1}`] = new URL(node.url).host;
      });
      haproxy = await startHaproxy(path.join(FIXTURES, "haproxy-cors.cfg"), env);
      await mkdir(SCREENSHOTS, { recursive: true });
    },
    { timeout: SETUP_TIMEOUT_MS },
  );

  after(async () => {
    // Everything started, by PID; one failing stop does not keep the others.
    await Promise.allSettled([
      browser?.close(),
      haproxy?.stop(),
      ...nodes.map((node) => node?.stop()),
      strictNode?.stop(),
    ]);
    await Promise.allSettled([redis?.stop(), pageServer?.close()]);
  });

  /**
   * Opens the page in a fresh browser context (no cookies) with the client
   * pointed at `url`, waits until it is done, then adds to its log the
   * browser console's errors and the lines `notes(run)` returns (what only
   * the test sees), and takes a screenshot named `screenshot`.
   */
  async function runPage({
    url,
    credentials,
    screenshot,
    origin = pageServer.origin,
    notes = async () => [],
  }) {
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      const run = {
        results: null,
        consoleErrors: [],
        failedRequests: [],
        badResponses: [],
        webSockets: [],
        cookies: [],
        blockedCookies: [],
      };
      // Cookies the browser refused to store, and why (Chrome DevTools
      // Protocol: nothing else reports it).
      const cdp = await context.newCDPSession(page);
      cdp.on("Network.responseReceivedExtraInfo", ({ blockedCookies = [] }) => {
        for (const { blockedReasons, cookieLine } of blockedCookies) {
          run.blockedCookies.push({ cookieLine, blockedReasons });
        }
      });
      await cdp.send("Network.enable");
      page.on("console", (message) => {
        if (message.type() === "error") run.consoleErrors.push(message.text());
      });
      page.on("pageerror", (error) => run.consoleErrors.push(`page error: ${error.message}`));
      page.on("requestfailed", (request) =>
        run.failedRequests.push(
          `${request.method()} ${request.url()}: ${request.failure()?.errorText}`,
        ),
      );
      page.on("response", (response) => {
        if (response.status() >= 400) {
          run.badResponses.push(
            `${response.status()} ${response.request().method()} ${response.url()}`,
          );
        }
      });
      page.on("websocket", (ws) => {
        const entry = { url: ws.url(), error: null };
        ws.on("socketerror", (error) => (entry.error = String(error)));
        run.webSockets.push(entry);
      });

      const query = new URLSearchParams({ url, credentials: credentials ? "1" : "0" });
      await page.goto(`${origin}/?${query}`, { timeout: PAGE_TIMEOUT_MS });
      await page.waitForFunction(() => window.results?.done, null, {
        timeout: PAGE_TIMEOUT_MS,
      });
      run.results = await page.evaluate(() => window.results);
      run.cookies = await context.cookies(url);
      // The page cannot see what the browser printed about CORS (scripts
      // get only status 0), nor HttpOnly cookies: show them in the
      // screenshot.
      const lines = [
        ...run.consoleErrors.map((text) => ({ kind: "console", text: `browser console: ${text}` })),
        ...run.blockedCookies.map(({ cookieLine, blockedReasons }) => ({
          kind: "console",
          text: `browser refused the cookie ${cookieLine} (${blockedReasons.join(", ")})`,
        })),
        ...(await notes(run)).map((text) => ({ kind: "", text: `test: ${text}` })),
      ];
      await page.evaluate((lines) => {
        for (const { kind, text } of lines) {
          const item = document.createElement("li");
          item.className = kind;
          item.textContent = text;
          document.getElementById("log").append(item);
        }
      }, lines);
      await page.screenshot({ path: path.join(SCREENSHOTS, screenshot), fullPage: true });
      return run;
    } finally {
      await context.close();
    }
  }

  /** "n1: 0, n2: 9, n3: 0". */
  const perNode = (requests) =>
    Object.entries(requests)
      .map(([name, n]) => `${name}: ${n}`)
      .join(", ");

  test("withCredentials: one node serves the whole session, polling then WebSocket", async () => {
    const before = await haproxy.servers();
    let requests;
    const run = await runPage({
      url: haproxy.url,
      credentials: true,
      screenshot: "success.png",
      notes: async ({ cookies, results }) => {
        requests = await haproxy.requestsSince(before);
        const io = cookies.find((c) => c.name === "io");
        return [
          `io cookie in the browser: ${io ? io.value : "none"}`,
          `welcome worker ${results.welcome?.worker} is on node ${nodeOfWorker.get(results.welcome?.worker)}`,
          `HAProxy requests per node: ${perNode(requests)}`,
        ];
      },
    });
    const { results } = run;
    const report = JSON.stringify({ ...run, requests }, null, 2);
    assert.ok(results.ok, `the page failed: ${report}`);
    assert.ok(results.connected);
    assert.ok(results.upgraded, "no upgrade to WebSocket");

    // Three acks over polling, three over WebSocket, each the echoed message.
    assert.deepEqual(
      results.echoes.map((e) => [e.phase, e.sentOver, e.ackedOver, e.reply.n]),
      [
        ["before upgrade", "polling", "polling", 1],
        ["before upgrade", "polling", "polling", 2],
        ["before upgrade", "polling", "polling", 3],
        ["after upgrade", "websocket", "websocket", 1],
        ["after upgrade", "websocket", "websocket", 2],
        ["after upgrade", "websocket", "websocket", 3],
      ],
    );
    for (const echo of results.echoes) {
      assert.deepEqual(echo.reply, { phase: echo.phase, n: echo.n });
    }

    // The browser kept HAProxy's cookie: `io=<server>~<Engine.IO sid>`.
    const io = run.cookies.find((c) => c.name === "io");
    assert.ok(io, `no io cookie: ${report}`);
    const [server, sid] = io.value.split("~");
    assert.equal(sid, results.sid, "the io cookie names another session");
    assert.equal(io.sameSite, "Lax");
    assert.equal(io.httpOnly, true);
    // The worker that welcomed the socket is on that server's node...
    assert.equal(nodeOfWorker.get(results.welcome.worker), server, report);
    // ...and every request of the session went there: the handshake, the
    // POSTs and GETs of the polling phase, the WebSocket upgrade.
    assert.deepEqual(
      Object.keys(requests).filter((name) => requests[name] > 0),
      [server],
      `requests per server: ${perNode(requests)}`,
    );
    assert.ok(requests[server] >= 8, `only ${requests[server]} requests`);
    assert.equal(run.webSockets.length, 1, report);
    assert.equal(run.webSockets[0].error, null, report);

    // Zero errors of any kind.
    assert.deepEqual(run.blockedCookies, []);
    assert.deepEqual(run.consoleErrors, []);
    assert.deepEqual(run.failedRequests, []);
    assert.deepEqual(run.badResponses, []);
  });

  /**
   * Runs the page through HAProxy from `origin` and checks that the
   * browser kept no `io` cookie, so the session broke on its second
   * request. Returns the run.
   */
  async function sessionWithoutCookie({ origin, credentials, screenshot }) {
    const before = await haproxy.servers();
    let requests;
    const run = await runPage({
      url: haproxy.url,
      origin,
      credentials,
      screenshot,
      notes: async ({ cookies }) => {
        requests = await haproxy.requestsSince(before);
        const io = cookies.find((c) => c.name === "io");
        return [
          `io cookie in the browser: ${io ? io.value : "none"}`,
          `HAProxy requests per node: ${perNode(requests)}`,
        ];
      },
    });
    const { results } = run;
    const report = JSON.stringify({ ...run, requests }, null, 2);

    // The handshake worked (CORS allows the origin)...
    assert.ok(results.sid, `no handshake: ${report}`);
    // ...but the browser did not keep its cookie.
    assert.equal(run.cookies.find((c) => c.name === "io"), undefined, report);
    // So HAProxy balanced the session's next requests (the CONNECT packet's
    // POST, the GET poll, the WebSocket upgrade: three at once, round-robin
    // over three nodes) and at least one polling request reached a node
    // that does not know the session.
    assert.ok(
      Object.values(requests).filter((n) => n > 0).length >= 2,
      `requests per server: ${perNode(requests)}`,
    );
    // The Socket.IO connection never opened.
    assert.equal(results.connected, false, report);
    assert.equal(results.welcome, null);
    assert.match(results.error, /^connect_error: xhr (post|poll) error, HTTP status 400$/, report);
    // What the user sees in the console: the other node's master answers
    // `400 {"code":1,"message":"Session ID unknown"}` with the CORS headers
    // a worker would send (as Node's server does), so the browser reports
    // the 400 itself, not a CORS error.
    // (The upgrade's WebSocket, when balanced to another node too, gets
    // the same 400.)
    const polling400 =
      "Failed to load resource: the server responded with a status of 400 (Bad Request)";
    const websocket400 =
      `WebSocket connection to '${haproxy.url.replace(/^http/, "ws")}` +
      `/socket.io/?EIO=4&transport=websocket&sid=${results.sid}' failed: ` +
      "Error during WebSocket handshake: Unexpected response code: 400";
    assert.ok(run.consoleErrors.includes(polling400), report);
    for (const text of run.consoleErrors) {
      assert.ok(text === polling400 || text === websocket400, `${text}\n${report}`);
    }
    assert.ok(run.badResponses.length >= 1, report);
    for (const response of run.badResponses) {
      assert.ok(
        response.startsWith(`400 `) && response.endsWith(`&sid=${results.sid}`),
        `${response}\n${report}`,
      );
    }
    assert.deepEqual(run.failedRequests, [], report);
    return { run, report };
  }

  test("without withCredentials: no cookie, the session's next requests reach other nodes", async () => {
    const { run, report } = await sessionWithoutCookie({
      origin: pageServer.origin,
      credentials: false,
      screenshot: "failure.png",
    });
    // Without credentials the browser ignores Set-Cookie silently.
    assert.deepEqual(run.blockedCookies, [], report);
  });

  test("withCredentials from another site: the io cookie is refused, the session breaks", async () => {
    const { run, report } = await sessionWithoutCookie({
      origin: crossSiteOrigin,
      credentials: true,
      screenshot: "failure-cross-site.png",
    });
    // The browser refused the handshake's cookie as a third-party cookie
    // (Chromium's reason: "UserPreferences", third-party cookies blocked;
    // where they are allowed, SameSite=Lax refuses it as well).
    assert.ok(run.blockedCookies.length >= 1, report);
    for (const { cookieLine, blockedReasons } of run.blockedCookies) {
      assert.match(cookieLine, /^io=n[123]~[\w-]+; Path=\/; HttpOnly; SameSite=Lax$/, report);
      assert.ok(blockedReasons.length >= 1, report);
    }
  });

  test("withCredentials against a node without --cors-credentials: the handshake is blocked", async () => {
    const run = await runPage({
      url: strictNode.url,
      credentials: true,
      screenshot: "failure-no-cors-credentials.png",
    });
    const { results } = run;
    const report = JSON.stringify(run, null, 2);

    // The handshake's response reached the browser, which kept it from the
    // page: no session, no connection.
    assert.equal(results.sid, null, report);
    assert.equal(results.connected, false, report);
    assert.equal(results.error, "connect_error: xhr poll error, HTTP status 0", report);
    assert.equal(run.consoleErrors.length, 2, report);
    assert.match(
      run.consoleErrors[0],
      new RegExp(
        `^Access to XMLHttpRequest at '${strictNode.url}/socket\\.io/\\?EIO=4&transport=polling&t=[^']+' ` +
          `from origin '${pageServer.origin}' has been blocked by CORS policy: ` +
          "The value of the 'Access-Control-Allow-Credentials' header in the response is '' " +
          "which must be 'true' when the request's credentials mode is 'include'\\.",
      ),
    );
    assert.equal(run.consoleErrors[1], "Failed to load resource: net::ERR_FAILED");
  });
});

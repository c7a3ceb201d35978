// The client bundle and the built-in chat page, in a real browser with no
// network beyond loopback.
//
// 1. The bundle: /socket.io/socket.io.min.js is the socket.io-client file,
//    with the client's version as ETag; If-None-Match gets 304; gzip when
//    asked; --no-serve-client turns it off.
// 2. Headless Chromium, every request to a host other than 127.0.0.1
//    aborted (and recorded), opens the chat page of `iocluster --workers 2`
//    in fresh browser contexts until two tabs are connected to different
//    workers; a message typed in one shows up in the other.
// 3. The same page over HTTPS, the browser trusting the test CA (its key
//    pinned with --ignore-certificate-errors-spki-list): it loads, connects
//    and upgrades to WebSocket (wss).
//
// Screenshots end up in <cargo target dir>/chat-page/. Needs /usr/bin/chromium.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { createRequire } from "node:module";
import path from "node:path";
import { gunzipSync } from "node:zlib";
import { after, before, describe, test } from "node:test";

import { chromium } from "playwright-core";

import { cargoTargetDir } from "./lb-support.js";
import { REPO_ROOT, startCluster } from "./processes.js";
import { testCertificates } from "./tls-support.js";

const CHROMIUM = "/usr/bin/chromium";
const CLIENT_DIST = path.join(REPO_ROOT, "tests/js/node_modules/socket.io-client/dist");
const CLIENT_VERSION = createRequire(import.meta.url)("socket.io-client/package.json").version;
const SCREENSHOTS = path.join(cargoTargetDir(), "chat-page");
/** How long a page may take to connect, or a message to arrive. */
const PAGE_TIMEOUT_MS = 10_000;
/** Fresh tabs opened at most to find two on different workers. */
const MAX_TABS = 8;

/** Only loopback: the page must need nothing else. */
function isLoopback(url) {
  const { hostname } = new URL(url);
  return hostname === "127.0.0.1" || hostname === "localhost" || hostname === "[::1]";
}

/**
 * A browser that resolves no name and whose contexts abort every request
 * to a host other than loopback, recording its URL in `offsite`.
 */
async function launchOffline(extraArgs = []) {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ["--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1", ...extraArgs],
  });
  const offsite = [];
  const newContext = async () => {
    const context = await browser.newContext();
    await context.route("**/*", (route) => {
      const url = route.request().url();
      if (isLoopback(url)) return route.continue();
      offsite.push(url);
      return route.abort();
    });
    return context;
  };
  return { browser, offsite, newContext };
}

/** Opens the chat page at `url` in `context`; resolves `{page, worker}` once connected. */
async function openChat(context, url) {
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (error) => errors.push(error.message));
  await page.goto(url, { timeout: PAGE_TIMEOUT_MS });
  try {
    await page.waitForFunction(
      () => /on worker pid \d+/.test(document.getElementById("status").textContent),
      undefined,
      { timeout: PAGE_TIMEOUT_MS },
    );
  } catch (error) {
    throw new Error(`the page did not connect (page errors: ${errors.join("; ") || "none"})`, {
      cause: error,
    });
  }
  const status = await page.textContent("#status");
  const worker = Number(/on worker pid (\d+)/.exec(status)[1]);
  return { page, worker, status };
}

/** Waits until the page's log shows `text`. */
async function logShows(page, text) {
  await page.waitForFunction(
    (wanted) => document.getElementById("log").textContent.includes(wanted),
    text,
    { timeout: PAGE_TIMEOUT_MS },
  );
}

describe("the client bundle", () => {
  let cluster;
  let bare;

  before(async () => {
    [cluster, bare] = await Promise.all([
      startCluster({ workers: 2 }),
      startCluster({ workers: 1, args: ["--no-serve-client"] }),
    ]);
  });

  after(async () => {
    await Promise.allSettled([cluster?.stop(), bare?.stop()]);
  });

  test("every file of socket.io-client's dist is served with its version as ETag", async () => {
    for (const name of [
      "socket.io.js",
      "socket.io.min.js",
      "socket.io.msgpack.min.js",
      "socket.io.esm.min.js",
      "socket.io.min.js.map",
    ]) {
      const response = await fetch(`${cluster.url}/socket.io/${name}`, {
        headers: { "accept-encoding": "identity" },
      });
      assert.equal(response.status, 200, name);
      assert.equal(response.headers.get("etag"), `"${CLIENT_VERSION}"`, name);
      assert.equal(response.headers.get("cache-control"), "public, max-age=0", name);
      assert.match(
        response.headers.get("content-type"),
        name.endsWith(".map") ? /^application\/json/ : /^application\/javascript/,
        name,
      );
      const body = Buffer.from(await response.arrayBuffer());
      assert.ok(body.equals(readFileSync(path.join(CLIENT_DIST, name))), `${name} differs`);
    }
  });

  test("If-None-Match with the ETag gets 304, another version the file", async () => {
    const url = `${cluster.url}/socket.io/socket.io.min.js`;
    const first = await fetch(url);
    const etag = first.headers.get("etag");
    await first.arrayBuffer();
    for (const tag of [etag, `W/${etag}`]) {
      const again = await fetch(url, { headers: { "if-none-match": tag } });
      assert.equal(again.status, 304, tag);
      assert.equal(again.headers.get("etag"), etag);
      assert.equal((await again.arrayBuffer()).byteLength, 0);
    }
    const stale = await fetch(url, { headers: { "if-none-match": '"1.0.0"' } });
    assert.equal(stale.status, 200);
    await stale.arrayBuffer();
  });

  test("gzip when the client accepts it", async () => {
    // fetch() would inflate on its own: read the raw bytes with curl.
    const raw = execFileSync("curl", [
      "--silent", "--show-error", "--fail", "--raw",
      "-H", "Accept-Encoding: gzip",
      `${cluster.url}/socket.io/socket.io.min.js`,
    ], { stdio: ["ignore", "pipe", "pipe"] });
    const file = readFileSync(path.join(CLIENT_DIST, "socket.io.min.js"));
    assert.ok(raw.length < file.length / 2, `${raw.length} bytes for ${file.length}`);
    assert.ok(gunzipSync(raw).equals(file));
  });

  test("--no-serve-client answers 404", async () => {
    const response = await fetch(`${bare.url}/socket.io/socket.io.min.js`);
    assert.equal(response.status, 404);
    await response.arrayBuffer();
  });
});

describe("the chat page in a browser with no network beyond loopback", () => {
  let cluster;
  let browser;
  let offsite;
  let newContext;

  before(async () => {
    [cluster, { browser, offsite, newContext }] = await Promise.all([
      startCluster({ workers: 2, balance: "least-connection" }),
      launchOffline(),
      mkdir(SCREENSHOTS, { recursive: true }),
    ]);
  });

  after(async () => {
    await Promise.allSettled([browser?.close(), cluster?.stop()]);
  });

  test("two tabs on different workers exchange a message", async () => {
    const tabs = [];
    let other;
    while (tabs.length < MAX_TABS && !other) {
      const tab = await openChat(await newContext(), cluster.url);
      tabs.push(tab);
      other = tabs.find((t) => t.worker !== tabs[0].worker);
    }
    assert.ok(other, `${MAX_TABS} tabs, all on worker ${tabs[0].worker}`);
    const workers = await cluster.readyPids();
    assert.ok(workers.includes(tabs[0].worker) && workers.includes(other.worker));

    const text = `hello from worker ${other.worker} at ${Date.now()}`;
    await other.page.fill("input[name=text]", text);
    await other.page.click("#send button");
    await logShows(tabs[0].page, text);
    await logShows(other.page, text);
    await tabs[0].page.screenshot({ path: path.join(SCREENSHOTS, "receiver.png") });
    await other.page.screenshot({ path: path.join(SCREENSHOTS, "sender.png") });
    assert.deepEqual(offsite, [], "the page asked for something beyond loopback");
  });
});

describe("the chat page over HTTPS", () => {
  let cluster;
  let browser;
  let offsite;
  let newContext;

  before(async () => {
    const certificates = testCertificates();
    const server = certificates.issue("server");
    // The base64 SHA-256 of the test CA's public key: Chromium accepts a
    // chain holding a key of this list, as if the CA were installed.
    const caKey = execFileSync("openssl", ["x509", "-in", path.join(certificates.dir, "ca.crt"), "-pubkey", "-noout"]);
    const der = execFileSync("openssl", ["pkey", "-pubin", "-outform", "der"], { input: caKey });
    const spki = execFileSync("openssl", ["dgst", "-sha256", "-binary"], { input: der }).toString(
      "base64",
    );
    [cluster, { browser, offsite, newContext }] = await Promise.all([
      startCluster({ workers: 2, args: ["--tls-cert", server.cert, "--tls-key", server.key] }),
      launchOffline([`--ignore-certificate-errors-spki-list=${spki}`]),
      mkdir(SCREENSHOTS, { recursive: true }),
    ]);
    assert.match(cluster.url, /^https:/);
  });

  after(async () => {
    await Promise.allSettled([browser?.close(), cluster?.stop()]);
  });

  test("loads, connects, upgrades to WebSocket and chats", async () => {
    const { page, worker } = await openChat(await newContext(), cluster.url);
    assert.ok((await cluster.readyPids()).includes(worker));
    // The page's `socket` (a top-level const of its script) upgrades.
    await page.waitForFunction(() => socket.io.engine.transport.name === "websocket", undefined, {
      timeout: PAGE_TIMEOUT_MS,
    });
    const text = `over https at ${Date.now()}`;
    await page.fill("input[name=text]", text);
    await page.click("#send button");
    await logShows(page, text);
    assert.equal(new URL(page.url()).protocol, "https:");
    await page.screenshot({ path: path.join(SCREENSHOTS, "https.png") });
    assert.deepEqual(offsite, [], "the page asked for something beyond loopback");
  });
});

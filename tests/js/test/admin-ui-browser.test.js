// The real Socket.IO Admin UI (the vendored @socket.io/admin-ui build) in
// headless Chromium, served by iocluster at /admin/, watching a fleet of
// two nodes synced through a redis-server of the test: node A with two
// workers, node B with one. The UI logs in through its form (the server
// URL preset by the page), lists the servers of both nodes and the sockets
// of every worker, and a disconnect clicked in its socket list disconnects
// a client of node B (the UI is connected to node A).
//
// Screenshots end up in <cargo target dir>/admin-ui/. Needs
// /usr/bin/chromium and redis-server.

import assert from "node:assert/strict";
import { mkdir } from "node:fs/promises";
import path from "node:path";
import { after, before, describe, test } from "node:test";

import { chromium } from "playwright-core";
import { io } from "socket.io-client";

import { EVENT_TIMEOUT_MS, PASSWORD, USERNAME, adminUiOptions } from "./admin-ui-support.js";
import { cargoTargetDir } from "./lb-support.js";
import { startCluster, startRedis } from "./processes.js";
import { waitFor } from "./support.js";

const CHROMIUM = "/usr/bin/chromium";
/** Where the screenshots go. */
const SCREENSHOTS = path.join(cargoTargetDir(), "admin-ui");
/** Starting Redis, two iocluster nodes and Chromium. */
const SETUP_TIMEOUT_MS = 60_000;
/** The UI loads, connects and renders within this. */
const UI_TIMEOUT_MS = 20_000;

describe("the Admin UI in a browser, watching two nodes on Redis", () => {
  let redis;
  let nodeA;
  let nodeB;
  let browser;
  const clients = [];

  before(
    async () => {
      redis = await startRedis();
      const options = adminUiOptions(["--redis", redis.redisUrl]);
      const started = await Promise.allSettled([
        startCluster({ workers: 2, balance: "round-robin", ...options }),
        startCluster({ workers: 1, ...options }),
        chromium.launch({ executablePath: CHROMIUM }),
      ]);
      [nodeA, nodeB, browser] = started.map((s) => (s.status === "fulfilled" ? s.value : undefined));
      const failure = started.find((s) => s.status === "rejected");
      if (failure) throw failure.reason;
      await mkdir(SCREENSHOTS, { recursive: true });
    },
    { timeout: SETUP_TIMEOUT_MS },
  );

  after(async () => {
    for (const client of clients) client.socket.close();
    await Promise.allSettled([browser?.close(), nodeA?.stop(), nodeB?.stop()]);
    await redis?.stop();
  });

  /** An app client of `node`; resolves once welcomed. */
  async function appClient(node) {
    const socket = io(node.url, { forceNew: true, reconnection: false });
    const welcome = await waitFor(socket, "welcome", EVENT_TIMEOUT_MS, {
      failOn: ["connect_error"],
    });
    const client = { socket, id: welcome.id, worker: welcome.worker };
    clients.push(client);
    return client;
  }

  test("logs in, shows every worker of both nodes, and disconnects a client of node B", async () => {
    // One client on each worker of node A (round-robin), one on node B.
    const onA = new Map();
    for (let i = 0; i < 6 && onA.size < 2; i++) {
      const client = await appClient(nodeA);
      onA.set(client.worker, client);
    }
    assert.equal(onA.size, 2, "no client on node A's second worker");
    const onB = await appClient(nodeB);
    const watched = [...onA.values(), onB];

    const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
    const page = await context.newPage();
    const consoleErrors = [];
    page.on("console", (m) => m.type() === "error" && consoleErrors.push(m.text()));
    page.on("pageerror", (e) => consoleErrors.push(`page error: ${e.message}`));
    // The page loads its text font from Google Fonts: no network here, so
    // fail it (and anything else not on loopback) at once rather than wait
    // for a timeout. Its icon font is served by iocluster.
    await page.route(
      (url) => url.hostname !== "127.0.0.1",
      (route) => route.abort(),
    );
    try {
      await page.goto(`${nodeA.url}/admin/`, { timeout: UI_TIMEOUT_MS });
      // First visit: the page presets the server URL to its own origin,
      // the UI tries it without a login, and asks for one.
      const serverUrl = page.getByLabel("Server URL");
      await serverUrl.waitFor({ timeout: UI_TIMEOUT_MS });
      assert.equal(await serverUrl.inputValue(), nodeA.url);
      await page.getByLabel("Username").fill(USERNAME);
      await page.getByLabel("Password").fill(PASSWORD);
      await page.getByRole("button", { name: "Connect" }).click();
      await serverUrl.waitFor({ state: "hidden", timeout: UI_TIMEOUT_MS });
      // The dashboard: clients and servers counted from server_stats.
      await page.getByText("Servers").first().waitFor({ timeout: UI_TIMEOUT_MS });
      // The icon font comes from iocluster, not the CDN the package names.
      const iconsLoaded = await page.evaluate(async () => {
        await document.fonts.ready;
        return document.fonts.check('24px "Material Design Icons"');
      });
      assert.ok(iconsLoaded, "the icon font did not load");
      await screenshot(page, "dashboard");

      // Servers: the three workers, of two nodes.
      await page.goto(`${nodeA.url}/admin/#/servers/`);
      await rowsWith(page, "/worker-", 3);
      const serverIds = await page.locator("tbody tr", { hasText: "/worker-" }).allInnerTexts();
      const nodes = new Set(serverIds.map((row) => row.match(/\/node-(\d+)\//)?.[1]));
      assert.equal(nodes.size, 2, `servers of one node only: ${serverIds.join(" | ")}`);
      await screenshot(page, "servers");

      // Sockets of the main namespace: every worker's.
      await page.goto(`${nodeA.url}/admin/#/sockets/`);
      for (const client of watched) {
        await page
          .locator("tbody tr", { hasText: client.id })
          .waitFor({ timeout: UI_TIMEOUT_MS });
      }
      await screenshot(page, "sockets");

      // The disconnect button of node B's client. The click reaches its
      // row too, which opens the socket's details (the UI's own doing):
      // they show it disconnected.
      const gone = waitFor(onB.socket, "disconnect", EVENT_TIMEOUT_MS);
      await page.locator("tbody tr", { hasText: onB.id }).getByRole("button").click();
      assert.equal(await gone, "io server disconnect");
      await page.getByText("Disconnected").first().waitFor({ timeout: UI_TIMEOUT_MS });
      await screenshot(page, "disconnected");
      // And it is gone from the list.
      await page.goto(`${nodeA.url}/admin/#/sockets/`);
      for (const client of onA.values()) await rowsWith(page, client.id, 1);
      await rowsWith(page, onB.id, 0);
      for (const client of onA.values()) {
        assert.ok(client.socket.connected, "a client it was not asked to disconnect left");
      }
      await screenshot(page, "after-disconnect");
      // Google Fonts fails to load here; nothing else may fail.
      const pageErrors = consoleErrors.filter((e) => !e.includes("net::ERR_FAILED"));
      assert.deepEqual(pageErrors, [], "the UI reported errors");
    } catch (error) {
      await screenshot(page, "failure").catch(() => {});
      error.message += `\nbrowser console: ${JSON.stringify(consoleErrors)}`;
      throw error;
    } finally {
      await context.close();
    }
  });
});

/** Saves `<SCREENSHOTS>/<name>.png`, the UI's transitions finished. */
function screenshot(page, name) {
  return page.screenshot({
    path: path.join(SCREENSHOTS, `${name}.png`),
    fullPage: true,
    animations: "disabled",
  });
}

/**
 * Resolves once exactly `count` table rows of `page` contain `text` (rows
 * change as the servers' events arrive, and a page left keeps its rows
 * during the UI's transition).
 */
async function rowsWith(page, text, count) {
  await page.waitForFunction(
    ([text, count]) =>
      [...document.querySelectorAll("tbody tr")].filter((e) => e.textContent.includes(text))
        .length === count,
    [text, count],
    { timeout: UI_TIMEOUT_MS },
  );
}

// The Socket.IO Admin UI's protocol against `iocluster --workers 2
// --admin-ui`, with socket.io-client acting as the UI (what its App.vue
// does): the login (right and wrong password, the session id it is given,
// accepted by any worker), `config`, `server_stats` of both workers,
// `all_sockets` and the live socket events of both workers, and the
// actions (`join`, `leave`, `_disconnect`) reaching a socket wherever it
// lives. Round-robin balancing puts consecutive connections on alternate
// workers.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { after, before, describe, test } from "node:test";

import { io } from "socket.io-client";

import {
  AdminClient,
  EVENT_TIMEOUT_MS,
  PASSWORD,
  USERNAME,
  adminUiOptions,
} from "./admin-ui-support.js";
import { clusterBinary, startCluster } from "./processes.js";
import { waitFor } from "./support.js";

const LOGIN = { username: USERNAME, password: PASSWORD };

describe("the Admin UI on iocluster --workers 2 --admin-ui", () => {
  let cluster;
  let workerPids;
  const opened = [];

  before(async () => {
    cluster = await startCluster({ workers: 2, balance: "round-robin", ...adminUiOptions() });
    workerPids = await cluster.readyPids();
  });

  after(async () => {
    for (const socket of opened) socket.close();
    await cluster?.stop();
  });

  function admin(auth, options) {
    const client = new AdminClient(cluster.url, auth, options);
    opened.push(client);
    return client;
  }

  /** An app client of the built-in app; resolves once welcomed. */
  async function appClient() {
    const socket = io(cluster.url, { forceNew: true, reconnection: false });
    opened.push(socket);
    const welcome = await waitFor(socket, "welcome", EVENT_TIMEOUT_MS, {
      failOn: ["connect_error"],
    });
    return { socket, id: welcome.id, worker: welcome.worker };
  }

  /** App clients until there is one on each worker. */
  async function oneClientPerWorker() {
    const byWorker = new Map();
    for (let i = 0; i < 6 && byWorker.size < 2; i++) {
      const client = await appClient();
      if (!byWorker.has(client.worker)) byWorker.set(client.worker, client);
    }
    assert.equal(byWorker.size, 2, "no app client landed on the second worker");
    return [...byWorker.values()];
  }

  test("a wrong password or username is refused with Node's message", async () => {
    const wrong = admin({ username: USERNAME, password: "nope" });
    assert.equal(await wrong.refused(), "invalid credentials");
    const nobody = admin({ username: "root", password: PASSWORD });
    assert.equal(await nobody.refused(), "invalid credentials");
    const empty = admin({});
    assert.equal(await empty.refused(), "invalid credentials");
  });

  test("the UI is served at /admin/", async () => {
    const index = await fetch(`${cluster.url}/admin/`);
    assert.equal(index.status, 200);
    assert.match(index.headers.get("content-type"), /^text\/html/);
    const page = await index.text();
    assert.match(page, /Socket\.IO Admin UI/);
    const bundle = page.match(/src="(js\/app\.[0-9a-f]+\.js)"/)[1];
    const script = await fetch(`${cluster.url}/admin/${bundle}`);
    assert.equal(script.status, 200);
    assert.match(script.headers.get("content-type"), /^text\/javascript/);
    assert.match(script.headers.get("cache-control"), /immutable/);
    const bare = await fetch(`${cluster.url}/admin`, { redirect: "manual" });
    assert.equal(bare.status, 308);
  });

  test("a login gets a session id, the config, and both workers' stats", async () => {
    const ui = admin(LOGIN);
    await ui.connected();
    const [, sessionId] = await ui.waitFor("session");
    assert.equal(typeof sessionId, "string");
    const [, config] = await ui.waitFor("config");
    for (const feature of ["JOIN", "LEAVE", "MDISCONNECT", "AGGREGATED_EVENTS", "ALL_EVENTS"]) {
      assert.ok(config.supportedFeatures.includes(feature), `no ${feature}`);
    }
    const servers = await ui.serverStats(2);
    const pids = [...servers.values()].map((s) => s.pid).sort();
    assert.deepEqual(pids, [...workerPids].sort(), "stats of other processes");
    for (const [serverId, stats] of servers) {
      assert.match(serverId, /\/node-\d+\/worker-\d+$/);
      assert.equal(typeof stats.hostname, "string");
      assert.equal(typeof stats.uptime, "number");
      assert.equal(typeof stats.clientsCount, "number");
      assert.equal(typeof stats.pollingClientsCount, "number");
      assert.ok(Array.isArray(stats.aggregatedEvents));
      assert.ok(stats.namespaces.some((n) => n.name === "/admin"));
    }
    ui.close();

    // The session id logs in again, without the password, on both workers.
    for (let i = 0; i < 2; i++) {
      const again = admin({ sessionId });
      await again.connected();
      again.close();
    }
    const forged = admin({ sessionId: `${sessionId}x` });
    assert.equal(await forged.refused(), "invalid credentials");
  });

  test("sockets of both workers are listed, live and in all_sockets", async () => {
    const ui = admin(LOGIN);
    await ui.connected();
    await ui.waitFor("all_sockets");
    const [a, b] = await oneClientPerWorker();
    for (const client of [a, b]) {
      const [, socket, time] = await ui.waitFor("socket_connected", (s) => s.id === client.id);
      assert.equal(socket.nsp, "/");
      assert.equal(typeof socket.clientId, "string");
      assert.ok(["polling", "websocket"].includes(socket.transport));
      assert.ok(socket.rooms.includes(client.id));
      assert.equal(socket.handshake.address, "127.0.0.1");
      assert.ok(!Number.isNaN(Date.parse(time)));
      await ui.waitFor("event_sent", (nsp, id, args) => id === client.id && args[0] === "welcome");
      // It connected over polling and upgrades: the UI is told.
      if (socket.transport === "polling") {
        await ui.waitFor("socket_updated", (u) => u.id === client.id && u.transport === "websocket");
      }
    }
    // An event a client sends is reported, wherever it is.
    b.socket.emit("join", "lobby");
    await ui.waitFor("event_received", (nsp, id, args) => id === b.id && args[0] === "join");
    await ui.waitFor("room_joined", (nsp, room, id) => room === "lobby" && id === b.id);

    // A new UI gets both in all_sockets, its login hidden from handshakes.
    const late = admin(LOGIN);
    await late.connected();
    const [, sockets] = await late.waitFor("all_sockets");
    const ids = sockets.map((s) => s.id);
    assert.ok(ids.includes(a.id) && ids.includes(b.id), "a worker's sockets are missing");
    const fromB = sockets.find((s) => s.id === b.id);
    assert.ok(fromB.rooms.includes("lobby"));
    assert.equal(typeof fromB.clientId, "string");
    assert.deepEqual(Object.keys(fromB.data), []);
    for (const socket of sockets.filter((s) => s.nsp === "/admin")) {
      assert.equal(socket.handshake.auth, undefined);
      assert.ok(!JSON.stringify(socket).includes(PASSWORD), "the password is shown");
    }
    ui.close();
    late.close();
  });

  test("join and leave reach a socket on any worker", async () => {
    const ui = admin(LOGIN);
    await ui.connected();
    const [a, b] = await oneClientPerWorker();
    for (const target of [a, b]) {
      const sender = target === a ? b : a;
      ui.socket.emit("join", "/", "vip", target.id);
      await ui.waitFor("room_joined", (nsp, room, id) => room === "vip" && id === target.id);
      // The app's room messages now reach it, from the other worker.
      const message = waitFor(target.socket, "message", EVENT_TIMEOUT_MS);
      await sender.socket.emitWithAck("message", "vip", "hello");
      assert.equal((await message).text, "hello");

      ui.socket.emit("leave", "/", "vip", target.id);
      await ui.waitFor("room_left", (nsp, room, id) => room === "vip" && id === target.id);
    }
  });

  test("_disconnect disconnects a socket on either worker", async () => {
    const ui = admin(LOGIN);
    await ui.connected();
    // Several rounds: the client closes its transport as soon as it reads
    // the DISCONNECT, and on the other worker the disconnect runs on the
    // control loop's thread; the reason the server reports must still be
    // the server's (it was once "transport close" when the client won).
    for (let round = 0; round < 8; round++) {
      const clients = await oneClientPerWorker();
      // The UI is on one of the two workers: one of these is on the other.
      for (const client of clients) {
        const gone = waitFor(client.socket, "disconnect", EVENT_TIMEOUT_MS);
        ui.socket.emit("_disconnect", "/", false, client.id);
        assert.equal(await gone, "io server disconnect");
        const [, nsp, , reason] = await ui.waitFor("socket_disconnected", (n, id) => id === client.id);
        assert.equal(nsp, "/");
        assert.equal(reason, "server namespace disconnect");
      }
    }
  });

  // Last: it leaves 127.0.0.1 throttled for a minute on both workers.
  test("failed logins are throttled per address", async () => {
    const messages = [];
    for (let i = 0; i < 12; i++) {
      const client = admin({ username: USERNAME, password: "guess" });
      messages.push(await client.refused());
    }
    assert.equal(messages[0], "invalid credentials");
    assert.match(messages.at(-1), /too many failed logins/);
    // Even the right password waits.
    const right = admin(LOGIN);
    assert.match(await right.refused(), /too many failed logins/);
  });
});

describe("a worker program of your own under iocluster --admin-ui", () => {
  let cluster;
  let ui;

  before(async () => {
    cluster = await startCluster({ workers: 2, worker: "custom_worker", ...adminUiOptions() });
  });

  after(async () => {
    ui?.close();
    await cluster?.stop();
  });

  test("instruments each worker (AdminUi::instrument_worker) and serves the UI", async () => {
    ui = new AdminClient(cluster.url, LOGIN);
    await ui.connected();
    const servers = await ui.serverStats(2);
    assert.deepEqual(
      [...servers.values()].map((s) => s.pid).sort(),
      (await cluster.readyPids()).sort(),
    );
    const index = await fetch(`${cluster.url}/admin/`);
    assert.equal(index.status, 200);
  });
});

describe("a hash made by iocluster hash-password, given on the command line", () => {
  let cluster;
  let ui;

  after(async () => {
    ui?.close();
    await cluster?.stop();
  });

  test("logs in with its password", async () => {
    const password = "correct horse battery staple";
    const hash = execFileSync(clusterBinary(), ["hash-password"], {
      input: `${password}\n`,
      encoding: "utf8",
    }).trim();
    assert.match(hash, /^\$2b\$10\$[./A-Za-z0-9]{53}$/);
    cluster = await startCluster({
      workers: 1,
      args: ["--admin-ui", "--admin-ui-password-hash", hash],
    });
    ui = new AdminClient(cluster.url, { username: "admin", password });
    await ui.connected();
    await ui.waitFor("config");
  });

  test("a password hash that is not bcrypt stops the master at once", () => {
    assert.throws(
      () =>
        execFileSync(clusterBinary(), ["--admin-ui", "--admin-ui-password-hash", "secret"], {
          encoding: "utf8",
          stdio: "pipe",
        }),
      (error) => error.status === 1 && /not a bcrypt hash/.test(error.stderr),
    );
  });
});

describe("iocluster --admin-ui --admin-ui-readonly --admin-ui-mode production", () => {
  let cluster;
  let ui;

  before(async () => {
    cluster = await startCluster({
      workers: 1,
      ...adminUiOptions(["--admin-ui-readonly", "--admin-ui-mode", "production"]),
    });
  });

  after(async () => {
    ui?.close();
    await cluster?.stop();
  });

  test("offers no action and no per-socket events", async () => {
    ui = new AdminClient(cluster.url, LOGIN);
    await ui.connected();
    const [, config] = await ui.waitFor("config");
    assert.deepEqual(config.supportedFeatures, ["AGGREGATED_EVENTS"]);
    await ui.serverStats(1);
    const client = io(cluster.url, { forceNew: true, reconnection: false });
    await waitFor(client, "welcome", EVENT_TIMEOUT_MS);
    ui.socket.emit("_disconnect", "/", false, client.id);
    // Stats keep coming; no socket event ever did, and the client stays.
    const stats = ui.events.filter(([e]) => e === "server_stats").length;
    await ui.waitUntil(
      ([e]) => e === "server_stats" && ui.events.filter(([x]) => x === "server_stats").length > stats,
      "the next server_stats",
    );
    assert.ok(client.connected);
    const names = new Set(ui.events.map(([e]) => e));
    for (const name of ["all_sockets", "socket_connected", "event_received"]) {
      assert.ok(!names.has(name), `${name} in production mode`);
    }
    client.close();
  });
});

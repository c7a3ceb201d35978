// The official Node socket.io-client against examples/socketio_test_server.rs:
// transports and upgrade, namespaces, auth and middlewares, acks both ways
// with timeouts, binary fidelity, rooms, broadcasts with acks, disconnect
// reasons on both sides, and connection state recovery.
//
// The server has connection state recovery on, so every event it emits
// carries its offset as the last argument (as Node's server does); the
// helpers below strip it. Tests that count receivers connect to a fresh
// `/dynamic-<n>` namespace, so that no other test's clients are counted.
// Non-delivery is asserted without sleeping: a marker event that everyone
// receives follows, and each client's log must hold exactly what it should
// before the marker.

import assert from "node:assert/strict";
import { after, afterEach, before, describe, test } from "node:test";

import { io, Manager } from "socket.io-client";

import { startExample } from "./processes.js";
import { toBuffer, waitFor, withTimeout } from "./support.js";

/** Connecting, an event, an ack: all quick on localhost. */
const EVENT_TIMEOUT_MS = 5_000;
const TEST_TIMEOUT_MS = 30_000;
/** How long the server's `ask-client` waits for the client's answer. */
const ASK_CLIENT_TIMEOUT_MS = 2_000;
/** The largest binary sent; MAX_PAYLOAD leaves room for base64 over polling. */
const ONE_MB = 1024 * 1024;

let server;
/** Every client a test opened; closed after each test. */
const clients = new Set();
/** Makes each `/dynamic-<n>` namespace name unique within the run. */
let namespaceCounter = 0;

before(async () => {
  server = await startExample("socketio_test_server", {
    // Heartbeats well inside each test, so they run alongside everything.
    env: { MAX_PAYLOAD: "2000000", PING_INTERVAL: "1000", PING_TIMEOUT: "5000" },
  });
});

after(async () => {
  await server?.stop();
});

afterEach(() => {
  for (const socket of clients) {
    socket.io.reconnection(false);
    socket.disconnect();
  }
  clients.clear();
});

/** A namespace no other test uses. */
function freshNamespace() {
  namespaceCounter += 1;
  return `/dynamic-${process.pid}${namespaceCounter}`;
}

/**
 * A new client of namespace `nsp` on its own connection, not waited for.
 * Reconnection is off unless `options` turn it on.
 */
function open(nsp = "/", options = {}) {
  const socket = io(`${server.url}${nsp}`, {
    forceNew: true,
    reconnection: false,
    ...options,
  });
  clients.add(socket);
  return socket;
}

/** Resolves once `socket` is connected; rejects on `connect_error`. */
async function connected(socket) {
  if (socket.connected) return socket;
  await waitFor(socket, "connect", EVENT_TIMEOUT_MS, {
    failOn: ["connect_error"],
  });
  return socket;
}

/** A connected client of namespace `nsp`. */
async function connect(nsp = "/", options = {}) {
  return connected(open(nsp, options));
}

/**
 * A connected client of dynamic namespace `nsp` that has received its
 * `hello`, so that nothing else is on its way to it.
 */
async function connectDynamic(nsp, options = {}) {
  const socket = open(nsp, options);
  const hello = nextEvent(socket, "hello");
  await connected(socket);
  assert.deepEqual(await hello, [nsp]);
  return socket;
}

/**
 * Resolves with every argument of the next `event` on `socket` (the next
 * one whose arguments pass `accept`, when given).
 */
function nextArgs(
  socket,
  event,
  { timeoutMs = EVENT_TIMEOUT_MS, accept = () => true } = {},
) {
  let listener;
  const received = new Promise((resolve) => {
    listener = (...args) => {
      if (accept(args)) resolve(args);
    };
    socket.on(event, listener);
  });
  return withTimeout(received, timeoutMs, `"${event}"`).finally(() =>
    socket.off(event, listener),
  );
}

/**
 * The arguments of a server emit without its trailing recovery offset, or
 * without the ack callback of an emit that asks for one (those are not kept
 * for recovery, so they have no offset).
 */
function withoutOffset(args) {
  if (typeof args.at(-1) === "function") return args.slice(0, -1);
  assert.ok(args.length > 0, "an event from the server has an offset");
  assert.equal(typeof args.at(-1), "string", "the last argument is the offset");
  return args.slice(0, -1);
}

/** Resolves with the arguments (offset stripped) of the next `event`. */
async function nextEvent(socket, event) {
  return withoutOffset(await nextArgs(socket, event));
}

/**
 * Emits `event` with `args` asking for an ack; resolves with every argument
 * of the ack, rejects when none comes in time.
 */
function request(socket, event, ...args) {
  return new Promise((resolve, reject) => {
    socket.timeout(EVENT_TIMEOUT_MS).emit(event, ...args, (error, ...reply) => {
      if (error) reject(new Error(`no ack for "${event}": ${error.message}`));
      else resolve(reply);
    });
  });
}

/** Records every event `socket` receives as `[event, ...args]`. */
function recordEvents(socket) {
  const log = [];
  socket.onAny((event, ...args) => log.push([event, ...withoutOffset(args)]));
  return log;
}

/**
 * Makes `sender` broadcast a marker and waits until each of `sockets` got
 * it; after that, each log holds everything sent to it before the marker.
 */
async function broadcastMarker(sender, sockets, marker = "marker") {
  const accept = (args) => args[0] === marker;
  const arrivals = sockets.map((socket) =>
    nextArgs(socket, "broadcast", { accept }),
  );
  sender.emit("broadcast", marker);
  await Promise.all(arrivals);
}

/** Every binary value in `value` as a Buffer, for deep comparison. */
function normalizeBinaries(value) {
  if (value instanceof ArrayBuffer || ArrayBuffer.isView(value)) {
    return toBuffer(value);
  }
  if (Array.isArray(value)) return value.map(normalizeBinaries);
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [k, normalizeBinaries(v)]),
    );
  }
  return value;
}

/** `size` bytes in a pattern that a shifted or truncated copy breaks. */
function patternBytes(size, seed = 0) {
  const bytes = Buffer.alloc(size);
  for (let i = 0; i < size; i++) bytes[i] = (i * 31 + (i >> 8) + seed) & 0xff;
  return bytes;
}

/** Asks the server why socket `id` disconnected (waits until it has). */
async function serverReasons(watcher, id) {
  const [reasons] = await request(watcher, "last-disconnect-reasons", id);
  return reasons;
}

describe("transports", () => {
  test(
    "the handshake carries the options the environment set",
    { timeout: TEST_TIMEOUT_MS },
    async () => {
      const base = `${server.url}/socket.io/?EIO=4&transport=polling`;
      const signal = AbortSignal.timeout(EVENT_TIMEOUT_MS);
      const response = await fetch(base, { signal });
      assert.equal(response.status, 200);
      const open = JSON.parse((await response.text()).slice(1));
      assert.equal(open.maxPayload, 2_000_000);
      assert.equal(open.pingInterval, 1_000);
      assert.equal(open.pingTimeout, 5_000);
      assert.deepEqual(open.upgrades, ["websocket"]);
      // Close the session rather than leave it to time out.
      const closed = await fetch(`${base}&sid=${open.sid}`, {
        method: "POST",
        body: "1",
        signal,
      });
      assert.equal(await closed.text(), "ok");
    },
  );

  test(
    "polling only: connects, acks an echo and receives an emit over polling",
    { timeout: TEST_TIMEOUT_MS },
    async () => {
      const socket = await connect("/", { transports: ["polling"] });
      assert.equal(socket.io.engine.transport.name, "polling");

      const reply = await request(socket, "echo", "héllo ✓", 1, { two: [2] });
      assert.deepEqual(reply, ["héllo ✓", 1, { two: [2] }]);

      const echoed = nextEvent(socket, "emit-back");
      socket.emit("emit-back", "back", null, [true]);
      assert.deepEqual(await echoed, ["back", null, [true]]);
      assert.equal(socket.io.engine.transport.name, "polling");
    },
  );

  test(
    "websocket only: connects, acks an echo and receives an emit over websocket",
    { timeout: TEST_TIMEOUT_MS },
    async () => {
      const socket = await connect("/", { transports: ["websocket"] });
      assert.equal(socket.io.engine.transport.name, "websocket");

      assert.deepEqual(await request(socket, "echo", "a", { b: 1 }), [
        "a",
        { b: 1 },
      ]);
      const echoed = nextEvent(socket, "emit-back");
      socket.emit("emit-back", "back");
      assert.deepEqual(await echoed, ["back"]);
    },
  );

  test(
    "default transports: connects over polling, upgrades to websocket, keeps working",
    { timeout: TEST_TIMEOUT_MS },
    async () => {
      const socket = open("/");
      const upgraded = waitFor(socket.io.engine, "upgrade", EVENT_TIMEOUT_MS, {
        failOn: ["upgradeError", "close"],
      });
      await connected(socket);
      assert.deepEqual(await request(socket, "echo", "before"), ["before"]);

      const transport = await upgraded;
      assert.equal(transport.name, "websocket");
      assert.equal(socket.io.engine.transport.name, "websocket");
      assert.deepEqual(await request(socket, "echo", "after"), ["after"]);
      const echoed = nextEvent(socket, "emit-back");
      socket.emit("emit-back", "after upgrade");
      assert.deepEqual(await echoed, ["after upgrade"]);
    },
  );
});

describe("namespaces, auth and middlewares", () => {
  test(
    "main namespace: the socket gets an id and its events are handled",
    { timeout: TEST_TIMEOUT_MS },
    async () => {
      const socket = await connect("/");
      assert.match(socket.id, /^\S{20}$/);
      assert.equal(socket.recovered, false);
      assert.deepEqual(await request(socket, "echo", "main"), ["main"]);
    },
  );

  test(
    "/custom emits the handshake auth on connection and echoes",
    { timeout: TEST_TIMEOUT_MS },
    async () => {
      const auth = { token: "abc", nested: { n: 1 } };
      const socket = open("/custom", { auth });
      const authEvent = nextEvent(socket, "auth");
      await connected(socket);
      assert.deepEqual(await authEvent, [auth]);
      assert.deepEqual(await request(socket, "echo", "custom"), ["custom"]);
    },
  );

  test(
    "a dynamic namespace /dynamic-<digits> is created on demand and says hello with its name",
    { timeout: TEST_TIMEOUT_MS },
    async () => {
      const nsp = freshNamespace();
      const socket = open(nsp);
      const hello = nextEvent(socket, "hello");
      await connected(socket);
      assert.deepEqual(await hello, [nsp]);
      assert.deepEqual(await request(socket, "echo", "dynamic"), ["dynamic"]);
    },
  );

  test(
    "a namespace that is neither static nor matched is refused with Invalid namespace",
    { timeout: TEST_TIMEOUT_MS },
    async () => {
      for (const nsp of ["/dynamic-abc", "/nope"]) {
        const socket = open(nsp);
        const error = await waitFor(socket, "connect_error", EVENT_TIMEOUT_MS, {
          failOn: ["connect"],
        });
        assert.equal(error.message, "Invalid namespace", nsp);
        assert.equal(socket.connected, false);
      }
    },
  );

  test(
    "namespaces multiplexed on one connection work independently; disconnect-me(true) ends them all",
    { timeout: TEST_TIMEOUT_MS },
    async () => {
      const manager = new Manager(server.url, { reconnection: false });
      const main = manager.socket("/");
      const custom = manager.socket("/custom", { auth: { who: "custom" } });
      clients.add(main).add(custom);
      const authEvent = nextEvent(custom, "auth");
      main.connect();
      custom.connect();
      await Promise.all([connected(main), connected(custom)]);
      assert.deepEqual(await authEvent, [{ who: "custom" }]);
      assert.equal(main.io.engine, custom.io.engine, "one connection");

      assert.deepEqual(await request(main, "echo", "on /"), ["on /"]);
      assert.deepEqual(await request(custom, "echo", "on /custom"), [
        "on /custom",
      ]);

      // Leaving one namespace keeps the other.
      const [mainId, customId] = [main.id, custom.id];
      const customLeft = nextArgs(custom, "disconnect");
      custom.disconnect();
      assert.equal((await customLeft)[0], "io client disconnect");
      assert.deepEqual(await serverReasons(main, customId), [
        "client namespace disconnect",
      ]);
      assert.deepEqual(await request(main, "echo", "still on /"), ["still on /"]);

      // Closing the connection from the server ends every namespace on it.
      custom.connect();
      await connected(custom);
      const watcher = await connect("/");
      const closed = waitFor(manager, "close", EVENT_TIMEOUT_MS);
      const reasons = [main, custom].map((socket) =>
        nextArgs(socket, "disconnect"),
      );
      main.emit("disconnect-me", true);
      for (const [reason] of await Promise.all(reasons)) {
        assert.equal(reason, "io server disconnect");
      }
      await closed;
      assert.deepEqual(await serverReasons(watcher, mainId), [
        "server namespace disconnect",
      ]);
    },
  );

  test(
    "/private admits a client whose auth.token is the secret",
    { timeout: TEST_TIMEOUT_MS },
    async () => {
      const socket = await connect("/private", { auth: { token: "secret" } });
      assert.deepEqual(await request(socket, "echo", "inside"), ["inside"]);
    },
  );

  test(
    "/private middleware refuses other clients: connect_error 'not authorized' with data.code 42",
    { timeout: TEST_TIMEOUT_MS },
    async () => {
      for (const auth of [undefined, { token: "wrong" }, { token: 42 }]) {
        const socket = open("/private", auth ? { auth } : {});
        const error = await waitFor(socket, "connect_error", EVENT_TIMEOUT_MS, {
          failOn: ["connect"],
        });
        assert.equal(error.message, "not authorized", JSON.stringify(auth));
        assert.deepEqual(error.data, { code: 42 });
        assert.equal(socket.connected, false);
      }
    },
  );
});

describe("acknowledgements", () => {
  test(
    "emitWithAck from the client resolves with the server's ack",
    { timeout: TEST_TIMEOUT_MS },
    async () => {
      const socket = await connect("/");
      const timed = () => socket.timeout(EVENT_TIMEOUT_MS);
      assert.equal(await timed().emitWithAck("echo", 42), 42);
      assert.deepEqual(
        await timed().emitWithAck("echo", { a: [1, "b"] }),
        { a: [1, "b"] },
      );
    },
  );

  test(
    "an ack the server never sends makes emitWithAck reject after the client's timeout",
    { timeout: TEST_TIMEOUT_MS },
    async () => {
      const socket = await connect("/");
      await assert.rejects(
        socket.timeout(100).emitWithAck("no-such-event", 1),
        /operation has timed out/,
      );
      // The connection is still fine.
      assert.deepEqual(await request(socket, "echo", "still here"), [
        "still here",
      ]);
    },
  );

  test(
    "the server asks the client and gets the answer of its ack callback",
    { timeout: TEST_TIMEOUT_MS },
    async () => {
      const socket = await connect("/");
      const questions = [];
      socket.on("question", (question, callback) => {
        questions.push(question);
        callback(`the answer to ${question} is 42`, {
          n: 42,
          bytes: patternBytes(300),
        });
      });
      const answer = await request(socket, "ask-client");
      assert.deepEqual(normalizeBinaries(answer), [
        "the answer to what? is 42",
        { n: 42, bytes: patternBytes(300) },
      ]);
      assert.deepEqual(questions, ["what?"]);
    },
  );

  test(
    "the server's ack request times out when the client does not answer",
    { timeout: TEST_TIMEOUT_MS },
    async () => {
      const socket = await connect("/");
      const asked = nextArgs(socket, "question");
      socket.on("question", () => {}); // never calls back
      const startedAt = Date.now();
      const [reply] = await request(socket, "ask-client");
      const elapsed = Date.now() - startedAt;
      const askedArgs = await asked;
      assert.equal(typeof askedArgs.at(-1), "function", "an ack was asked for");
      assert.deepEqual(reply, { error: "operation has timed out" });
      assert.ok(
        elapsed >= ASK_CLIENT_TIMEOUT_MS - 100,
        `the server waited ${elapsed} ms`,
      );
    },
  );
});

describe("binary payloads", () => {
  for (const transport of ["polling", "websocket"]) {
    test(
      `binaries up to 1 MB nested in objects round-trip byte-identical over ${transport}`,
      { timeout: TEST_TIMEOUT_MS },
      async () => {
        const socket = await connect("/", { transports: [transport] });
        const payload = {
          a: [1, { b: patternBytes(ONE_MB) }],
          small: patternBytes(3, 7),
          empty: Buffer.alloc(0),
          text: "not binary",
        };
        const second = [patternBytes(1000, 1), "tail"];

        const acked = await request(socket, "echo", payload, second);
        assert.deepEqual(normalizeBinaries(acked), [payload, second]);

        const emitted = nextEvent(socket, "emit-back");
        socket.emit("emit-back", payload, second);
        assert.deepEqual(normalizeBinaries(await emitted), [payload, second]);
        assert.equal(socket.io.engine.transport.name, transport);
      },
    );
  }
});

describe("rooms and broadcasts", () => {
  /** Three connected clients of a fresh namespace, with their event logs. */
  async function threeClients() {
    const nsp = freshNamespace();
    const sockets = await Promise.all(
      [1, 2, 3].map(() => connectDynamic(nsp)),
    );
    const logs = sockets.map(recordEvents);
    return { nsp, sockets, logs };
  }

  test(
    "to(room) reaches the room's other members and no one else",
    { timeout: TEST_TIMEOUT_MS },
    async () => {
      const { sockets, logs } = await threeClients();
      const [a, b] = sockets;
      assert.deepEqual(await request(a, "join", "r"), [[a.id, "r"].sort()]);
      await request(b, "join", "r");

      a.emit("to-room", "r", "hello room", { n: 1, bin: patternBytes(5) });
      await broadcastMarker(a, sockets);

      assert.deepEqual(logs[0], [["broadcast", "marker"]], "the sender");
      assert.deepEqual(
        normalizeBinaries(logs[1]),
        [
          ["room-message", "hello room", { n: 1, bin: patternBytes(5) }],
          ["broadcast", "marker"],
        ],
        "the other member",
      );
      assert.deepEqual(logs[2], [["broadcast", "marker"]], "not a member");
    },
  );

  test(
    "a socket that left a room no longer receives what is sent to it",
    { timeout: TEST_TIMEOUT_MS },
    async () => {
      const { sockets, logs } = await threeClients();
      const [a, b, c] = sockets;
      for (const socket of sockets) await request(socket, "join", "r");
      assert.deepEqual(await request(c, "leave", "r"), [[c.id]]);

      a.emit("to-room", "r", "after leave");
      await broadcastMarker(a, sockets);

      assert.deepEqual(logs[0], [["broadcast", "marker"]]);
      assert.deepEqual(logs[1], [
        ["room-message", "after leave"],
        ["broadcast", "marker"],
      ]);
      assert.deepEqual(logs[2], [["broadcast", "marker"]], "left the room");
      assert.ok(b.connected);
    },
  );

  test(
    "except(room) reaches every socket outside the room only",
    { timeout: TEST_TIMEOUT_MS },
    async () => {
      const { sockets, logs } = await threeClients();
      const [a, b] = sockets;
      await request(a, "join", "r");
      await request(b, "join", "r");

      a.emit("except-room", "r", "outside only");
      await broadcastMarker(a, sockets);

      assert.deepEqual(logs[0], [["broadcast", "marker"]], "in the room");
      assert.deepEqual(logs[1], [["broadcast", "marker"]], "in the room");
      assert.deepEqual(logs[2], [
        ["except-message", "outside only"],
        ["broadcast", "marker"],
      ]);
    },
  );

  test(
    "a broadcast reaches every socket of the namespace once, the sender included",
    { timeout: TEST_TIMEOUT_MS },
    async () => {
      const { sockets, logs } = await threeClients();
      const other = await connectDynamic(freshNamespace());
      const otherLog = recordEvents(other);

      sockets[1].emit("broadcast", "to all", [1, 2]);
      await broadcastMarker(sockets[1], sockets);

      for (const log of logs) {
        assert.deepEqual(log, [
          ["broadcast", "to all", [1, 2]],
          ["broadcast", "marker"],
        ]);
      }
      // Another namespace hears nothing: its own marker comes first.
      await broadcastMarker(other, [other], "other marker");
      assert.deepEqual(otherLog, [["broadcast", "other marker"]]);
    },
  );

  test(
    "a broadcast with acks collects every client's reply",
    { timeout: TEST_TIMEOUT_MS },
    async () => {
      const { sockets } = await threeClients();
      sockets.forEach((socket, i) =>
        socket.on("ping-all", (callback) => callback(`client ${i}`)),
      );

      const [result] = await request(sockets[0], "broadcast-with-ack", 2_000);

      assert.deepEqual(
        { ...result, replies: [...result.replies].sort() },
        {
          replies: ["client 0", "client 1", "client 2"],
          complete: true,
          expected: 3,
        },
      );
    },
  );

  test(
    "a broadcast with acks reports incomplete replies when a client stays silent",
    { timeout: TEST_TIMEOUT_MS },
    async () => {
      const { sockets } = await threeClients();
      sockets[0].on("ping-all", (callback) => callback("client 0"));
      sockets[1].on("ping-all", (callback) => callback("client 1"));
      sockets[2].on("ping-all", () => {}); // silent

      const [result] = await request(sockets[0], "broadcast-with-ack", 300);

      assert.deepEqual(
        { ...result, replies: [...result.replies].sort() },
        { replies: ["client 0", "client 1"], complete: false, expected: 3 },
      );
    },
  );

  test(
    "fetch-sockets lists every socket with its rooms and data",
    { timeout: TEST_TIMEOUT_MS },
    async () => {
      const { sockets } = await threeClients();
      const [a, b, c] = sockets;
      await request(a, "set-data", { name: "a", tags: [1] });
      await request(b, "join", "r");

      const [found] = await request(c, "fetch-sockets");

      const want = [
        { id: a.id, rooms: [a.id], data: { name: "a", tags: [1] } },
        { id: b.id, rooms: [b.id, "r"].sort(), data: null },
        { id: c.id, rooms: [c.id], data: null },
      ].sort((x, y) => (x.id < y.id ? -1 : 1));
      assert.deepEqual(found, want);
    },
  );
});

describe("disconnection", () => {
  test(
    "disconnect-me: the client sees 'io server disconnect', the server 'server namespace disconnect'",
    { timeout: TEST_TIMEOUT_MS },
    async () => {
      const watcher = await connect("/");
      for (const close of [false, true]) {
        const socket = await connect("/");
        const id = socket.id;
        const disconnected = nextArgs(socket, "disconnect");
        socket.emit("disconnect-me", close);
        const [reason] = await disconnected;
        assert.equal(reason, "io server disconnect", `close=${close}`);
        assert.deepEqual(await serverReasons(watcher, id), [
          "server namespace disconnect",
        ]);
      }
    },
  );

  test(
    "socket.disconnect(): the client sees 'io client disconnect', the server 'client namespace disconnect'",
    { timeout: TEST_TIMEOUT_MS },
    async () => {
      const watcher = await connect("/");
      for (const transport of ["polling", "websocket"]) {
        const socket = await connect("/", { transports: [transport] });
        const id = socket.id;
        const disconnected = nextArgs(socket, "disconnect");
        socket.disconnect();
        const [reason] = await disconnected;
        assert.equal(reason, "io client disconnect");
        assert.deepEqual(await serverReasons(watcher, id), [
          "client namespace disconnect",
        ]);
      }
    },
  );

  test(
    "closing the engine abruptly: the server sees 'transport close'",
    { timeout: TEST_TIMEOUT_MS },
    async () => {
      const watcher = await connect("/");
      for (const transport of ["polling", "websocket"]) {
        const socket = await connect("/", { transports: [transport] });
        const id = socket.id;
        const disconnected = nextArgs(socket, "disconnect");
        socket.io.engine.close();
        const [reason] = await disconnected;
        assert.equal(reason, "forced close", "the client's own wording");
        assert.deepEqual(await serverReasons(watcher, id), ["transport close"]);
      }
    },
  );

  test(
    "server-disconnect-others disconnects every other socket and keeps the sender",
    { timeout: TEST_TIMEOUT_MS },
    async () => {
      const nsp = freshNamespace();
      const [a, b, c] = await Promise.all(
        [1, 2, 3].map(() => connectDynamic(nsp)),
      );
      const ids = [b.id, c.id];
      const others = [b, c].map((socket) => nextArgs(socket, "disconnect"));

      await request(a, "server-disconnect-others");

      for (const [reason] of await Promise.all(others)) {
        assert.equal(reason, "io server disconnect");
      }
      assert.ok(a.connected);
      assert.deepEqual(await request(a, "echo", "still here"), ["still here"]);
      for (const id of ids) {
        assert.deepEqual(await serverReasons(a, id), [
          "server namespace disconnect",
        ]);
      }
    },
  );
});

describe("connection state recovery", () => {
  test(
    "a client whose transport closed recovers its id and rooms and gets the missed broadcast exactly once",
    { timeout: TEST_TIMEOUT_MS },
    async () => {
      const nsp = freshNamespace();
      const watcher = await connectDynamic(nsp);
      // The client's defaults: reconnection on, recovery-aware.
      const socket = await connectDynamic(nsp, { reconnection: true });
      assert.equal(socket.recovered, false);
      await request(socket, "join", "r");
      // An event, so that the client has an offset to present.
      const first = nextEvent(socket, "emit-back");
      socket.emit("emit-back", "first");
      assert.deepEqual(await first, ["first"]);
      const id = socket.id;
      const log = recordEvents(socket);

      const disconnected = nextArgs(socket, "disconnect");
      socket.io.engine.close();
      await disconnected;
      assert.deepEqual(await serverReasons(watcher, id), ["transport close"]);

      // The reconnection delay is at least 500 ms (1 s ± 50 %): the
      // broadcast below is over long before.
      const reconnected = waitFor(socket, "connect", 10_000, {
        failOn: ["connect_error"],
      });
      // A room it is in, a room it is not in, then everyone.
      watcher.emit("to-room", "r", "missed in the room");
      watcher.emit("to-room", "elsewhere", "not for it");
      const own = nextArgs(watcher, "broadcast");
      watcher.emit("broadcast", "missed", patternBytes(10));
      await own;
      assert.equal(socket.connected, false, "broadcast while disconnected");

      await reconnected;
      assert.equal(socket.recovered, true);
      assert.equal(socket.id, id);

      // Anything the server sends next comes after the missed packets. The
      // connection handlers run again for a recovered socket, as in Node.
      const marker = nextEvent(socket, "emit-back");
      socket.emit("emit-back", "marker");
      await marker;
      assert.deepEqual(normalizeBinaries(log), [
        ["room-message", "missed in the room"],
        ["broadcast", "missed", patternBytes(10)],
        ["hello", nsp],
        ["emit-back", "marker"],
      ]);

      // The room came back with the session.
      const inRoom = nextEvent(socket, "room-message");
      watcher.emit("to-room", "r", "still in the room");
      assert.deepEqual(await inRoom, ["still in the room"]);
    },
  );

  test(
    "a client the server disconnected gets a new session when it connects again",
    { timeout: TEST_TIMEOUT_MS },
    async () => {
      const nsp = freshNamespace();
      const socket = await connectDynamic(nsp);
      const first = nextEvent(socket, "emit-back");
      socket.emit("emit-back", "first");
      await first; // it has an offset
      const id = socket.id;

      const disconnected = nextArgs(socket, "disconnect");
      socket.emit("disconnect-me", false);
      assert.equal((await disconnected)[0], "io server disconnect");

      const hello = nextEvent(socket, "hello");
      socket.connect();
      await connected(socket);
      await hello;
      assert.equal(socket.recovered, false);
      assert.notEqual(socket.id, id);
    },
  );
});

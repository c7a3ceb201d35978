// The official Node Engine.IO client against examples/engineio_echo.rs:
// transports, upgrade, ordering, binary fidelity, large messages, close.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { Socket } from "engine.io-client";

import { startExample } from "./processes.js";
import { toBuffer, waitFor, withTimeout } from "./support.js";

const PATH = "/engine.io/";
/** Messages of each kind (text, binary) sent by an exchange. */
const COUNT = 1_000;
/** Opening, upgrading and closing are quick; exchanges get longer. */
const EVENT_TIMEOUT_MS = 10_000;
const EXCHANGE_TIMEOUT_MS = 30_000;
const TEST_TIMEOUT_MS = 60_000;
/** Messages in flight at once in the polling exchange; below 1024, see there. */
const POLLING_WINDOW = 500;
/** The polling burst finishes in well under a second when nothing is lost. */
const BURST_TIMEOUT_MS = 5_000;

let server;

before(async () => {
  server = await startExample("engineio_echo");
});

after(async () => {
  await server?.stop();
});

/** Opens a client with `options` and resolves once it is open. */
async function connect(options = {}) {
  const socket = new Socket(server.url, { path: PATH, ...options });
  try {
    await waitFor(socket, "open", EVENT_TIMEOUT_MS, {
      failOn: ["error", "close"],
    });
  } catch (error) {
    socket.close();
    throw error;
  }
  return socket;
}

/** Closes `socket` and resolves with the reason of its "close" event. */
async function close(socket) {
  if (socket.readyState === "closed") return undefined;
  const closed = waitFor(socket, "close", EVENT_TIMEOUT_MS);
  socket.close();
  return closed;
}

/** The `i`th text message: non-ASCII on purpose, to check UTF-8 handling. */
function textMessage(i) {
  return `message ${i}: héllo wörld ✓ 😀`;
}

/** The `i`th binary message: 1 to 256 bytes, every byte value used. */
function binaryMessage(i) {
  const bytes = Buffer.alloc(1 + (i % 256));
  for (let j = 0; j < bytes.length; j++) bytes[j] = (i + j) & 0xff;
  return bytes;
}

/**
 * Sends `messages` and resolves with the first `messages.length` messages
 * received back. Rejects if the socket closes or errors first.
 */
async function sendAndCollect(socket, messages, timeoutMs) {
  const received = [];
  const listeners = {};
  const all = new Promise((resolve, reject) => {
    listeners.message = (data) => {
      received.push(data);
      if (received.length === messages.length) resolve();
    };
    listeners.close = (reason, details) =>
      reject(
        new Error(
          `closed (${reason}) after ${received.length} of ` +
            `${messages.length} echoes: ${details?.message ?? ""}`,
        ),
      );
    listeners.error = (error) => reject(error);
  });
  for (const [event, listener] of Object.entries(listeners)) {
    socket.on(event, listener);
  }
  try {
    for (const message of messages) socket.send(message);
    await withTimeout(all, timeoutMs, `${messages.length} echoes`).catch(
      (error) => {
        error.message += ` (received ${received.length})`;
        throw error;
      },
    );
    return received;
  } finally {
    for (const [event, listener] of Object.entries(listeners)) {
      socket.off(event, listener);
    }
  }
}

/** COUNT text and COUNT binary messages, interleaved. */
function mixedMessages() {
  const messages = [];
  for (let i = 0; i < COUNT; i++) {
    messages.push(textMessage(i), binaryMessage(i));
  }
  return messages;
}

/**
 * Sends COUNT text and COUNT binary messages, interleaved, and checks every
 * echo arrives once, in order, with identical content. With `window`, at
 * most that many messages are in flight: the next batch is sent once the
 * previous one has been echoed in full.
 */
async function assertEchoesInOrder(socket, { window = Infinity } = {}) {
  const sent = mixedMessages();
  const received = [];
  for (let start = 0; start < sent.length; start += window) {
    const batch = sent.slice(start, start + window);
    received.push(...(await sendAndCollect(socket, batch, EXCHANGE_TIMEOUT_MS)));
  }

  assert.equal(received.length, 2 * COUNT);
  const texts = received.filter((data) => typeof data === "string");
  assert.equal(texts.length, COUNT, "text echoes");
  assert.equal(received.length - texts.length, COUNT, "binary echoes");
  for (let i = 0; i < sent.length; i++) {
    const want = sent[i];
    const got = received[i];
    if (typeof want === "string") {
      assert.equal(got, want, `echo #${i} (text)`);
    } else {
      assert.notEqual(typeof got, "string", `echo #${i} should be binary`);
      assert.ok(toBuffer(got).equals(want), `echo #${i} (binary) differs`);
    }
  }
}

/** Sends one `size`-byte message and checks it comes back byte-identical. */
async function assertLargeEcho(socket, size) {
  const payload = Buffer.alloc(size);
  for (let j = 0; j < size; j++) payload[j] = (j * 31 + (j >> 8)) & 0xff;
  const [echo] = await sendAndCollect(socket, [payload], EXCHANGE_TIMEOUT_MS);
  const bytes = toBuffer(echo);
  assert.equal(bytes.length, size);
  assert.ok(bytes.equals(payload), "large echo differs");
}

describe("engine.io-client against engineio_echo", () => {
  test(
    "default transports connect over polling, upgrade to websocket, echo 1,000 text + 1,000 binary in order",
    { timeout: TEST_TIMEOUT_MS },
    async () => {
      const socket = new Socket(server.url, { path: PATH });
      const opened = waitFor(socket, "open", EVENT_TIMEOUT_MS, {
        failOn: ["error", "close"],
      });
      const upgraded = waitFor(socket, "upgrade", EVENT_TIMEOUT_MS, {
        failOn: ["upgradeError", "error", "close"],
      });
      try {
        await opened;
        assert.equal(socket.transport.name, "polling");
        const transport = await upgraded;
        assert.equal(transport.name, "websocket");
        assert.equal(socket.transport.name, "websocket");
        await assertEchoesInOrder(socket);
        assert.equal(socket.transport.name, "websocket");
      } finally {
        await close(socket);
      }
    },
  );

  test(
    "websocket only: echoes 1,000 text + 1,000 binary in order",
    { timeout: TEST_TIMEOUT_MS },
    async () => {
      const socket = await connect({ transports: ["websocket"] });
      try {
        assert.equal(socket.transport.name, "websocket");
        await assertEchoesInOrder(socket);
      } finally {
        await close(socket);
      }
    },
  );

  test(
    "polling only: echoes 1,000 text + 1,000 binary in order",
    { timeout: TEST_TIMEOUT_MS },
    async () => {
      const socket = await connect({ transports: ["polling"], upgrade: false });
      try {
        assert.equal(socket.transport.name, "polling");
        // A window of messages in flight; the burst test below sends all
        // at once.
        await assertEchoesInOrder(socket, { window: POLLING_WINDOW });
        assert.equal(socket.transport.name, "polling");
      } finally {
        await close(socket);
      }
    },
  );

  test(
    "polling only: a burst of 1,000 text + 1,000 binary echoes in full",
    { timeout: TEST_TIMEOUT_MS },
    async () => {
      const socket = await connect({ transports: ["polling"], upgrade: false });
      try {
        const sent = mixedMessages();
        const received = await sendAndCollect(socket, sent, BURST_TIMEOUT_MS);
        assert.equal(received.length, sent.length);
      } finally {
        await close(socket);
      }
    },
  );

  test(
    "a 512 KiB binary message echoes byte-identical over polling",
    { timeout: TEST_TIMEOUT_MS },
    async () => {
      const socket = await connect({ transports: ["polling"], upgrade: false });
      try {
        await assertLargeEcho(socket, 512 * 1024);
        assert.equal(socket.transport.name, "polling");
      } finally {
        await close(socket);
      }
    },
  );

  test(
    "a 512 KiB binary message echoes byte-identical over websocket",
    { timeout: TEST_TIMEOUT_MS },
    async () => {
      const socket = await connect({ transports: ["websocket"] });
      try {
        await assertLargeEcho(socket, 512 * 1024);
        assert.equal(socket.transport.name, "websocket");
      } finally {
        await close(socket);
      }
    },
  );

  for (const transport of ["polling", "websocket"]) {
    test(
      `close() from the client ends a ${transport} session cleanly`,
      { timeout: TEST_TIMEOUT_MS },
      async () => {
        const socket = await connect({ transports: [transport] });
        const errors = [];
        socket.on("error", (error) => errors.push(error));
        const sid = socket.id;
        assert.match(sid, /^\S+$/);

        // One round trip first, so the session is really in use.
        const [echo] = await sendAndCollect(
          socket,
          ["before close"],
          EVENT_TIMEOUT_MS,
        );
        assert.equal(echo, "before close");

        const reason = await close(socket);
        assert.equal(reason, "forced close");
        assert.equal(socket.readyState, "closed");
        assert.deepEqual(errors, []);
        await assertSessionGone(sid);
      },
    );
  }
});

/**
 * Resolves once the server answers a poll for `sid` with Engine.IO's
 * "Session ID unknown" (400, code 1). The client's close packet travels on
 * its own, so the server may need a moment: retry until the deadline. A
 * probe is never aborted early: were a polling session still open, the probe
 * would wait for a ping (25 s) and fail, rather than end it by hanging up.
 */
async function assertSessionGone(sid) {
  const url = `${server.url}${PATH}?EIO=4&transport=polling&sid=${encodeURIComponent(sid)}`;
  const deadline = Date.now() + EVENT_TIMEOUT_MS;
  let last = "no answer";
  while (Date.now() < deadline) {
    try {
      const signal = AbortSignal.timeout(Math.max(1, deadline - Date.now()));
      const response = await fetch(url, { signal });
      const body = await response.text();
      last = `${response.status} ${body}`;
      if (response.status === 400 && JSON.parse(body).code === 1) return;
    } catch (error) {
      last = error.message;
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  assert.fail(`session ${sid} still known after close(): ${last}`);
}

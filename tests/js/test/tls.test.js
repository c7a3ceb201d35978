// HTTPS on the public port (--tls-cert/--tls-key): the official Socket.IO
// client over https:// with the test CA, through the master and three
// workers. The master reads nothing encrypted: it hands each TLS
// connection to the worker its client address hashes to, and that worker
// terminates TLS; a request for another worker's session is forwarded.
//
// Clients pick their source address among 127.0.0.2.. (an https.Agent with
// `localAddress`) to land on different workers, as clients from different
// addresses do.

import assert from "node:assert/strict";
import { copyFileSync } from "node:fs";
import https from "node:https";
import net from "node:net";
import tls from "node:tls";
import { after, before, describe, test } from "node:test";

import { io } from "socket.io-client";

import { clusterBinary, sendSignal, spawnTied, startCluster } from "./processes.js";
import { toBuffer, waitFor, withTimeout } from "./support.js";
import { testCertificates } from "./tls-support.js";

const WORKERS = 3;
const EVENT_TIMEOUT_MS = 5_000;
/** A 1 MB round trip over polling (base64) in a debug build. */
const LARGE_TIMEOUT_MS = 20_000;
const LARGE_BYTES = 1_000_000;
/** Polling handshakes, each followed at once by a request on a new connection. */
const HANDSHAKES = 2_000;
/** How many of them run at a time. */
const HANDSHAKE_CONCURRENCY = 16;
/** Connections that stop in the middle of their TLS handshake. */
const STALLED = 500;
const TRANSPORTS = [
  { name: "polling only", transports: ["polling"] },
  { name: "polling upgraded to WebSocket", transports: ["polling", "websocket"] },
  { name: "WebSocket only", transports: ["websocket"] },
];

const certificates = testCertificates();
const first = certificates.issue("server");

/** A loopback source address: 127.0.0.<2 + n mod 250>. */
function sourceAddress(n) {
  return `127.0.0.${2 + (n % 250)}`;
}

/** A Socket.IO client of `url` trusting the test CA, from `localAddress`. */
function client(url, { transports, localAddress = "127.0.0.1" }) {
  const agent = new https.Agent({ ca: certificates.caPem, localAddress, keepAlive: true });
  return io(url, {
    transports,
    ca: certificates.caPem,
    agent,
    localAddress,
    autoConnect: false,
    reconnection: false,
    forceNew: true,
  });
}

/** Connects `socket`; resolves with the pid of the worker that welcomed it. */
async function connect(socket) {
  const welcomed = waitFor(socket, "welcome", EVENT_TIMEOUT_MS, {
    failOn: ["connect_error", "disconnect"],
  });
  socket.connect();
  const welcome = await welcomed;
  assert.equal(welcome.id, socket.id);
  return welcome.worker;
}

async function upgraded(socket) {
  const engine = socket.io.engine;
  if (engine.transport.name === "websocket") return;
  await waitFor(engine, "upgrade", EVENT_TIMEOUT_MS, { failOn: ["upgradeError", "close"] });
}

function largeMessage() {
  const bytes = Buffer.alloc(LARGE_BYTES);
  for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 31 + (i >> 8)) & 0xff;
  return bytes;
}

/**
 * One HTTPS request on a connection of its own (no agent) from
 * `localAddress`; resolves with `{ status, headers, body }`.
 */
function request(url, { method = "GET", body, localAddress = "127.0.0.1" } = {}) {
  return withTimeout(
    new Promise((resolve, reject) => {
      const req = https.request(
        url,
        {
          method,
          agent: false,
          ca: certificates.caPem,
          localAddress,
          headers: body === undefined ? {} : { "content-type": "text/plain;charset=UTF-8" },
        },
        (res) => {
          const chunks = [];
          res.on("data", (chunk) => chunks.push(chunk));
          res.on("end", () =>
            resolve({
              status: res.statusCode,
              headers: res.headers,
              body: Buffer.concat(chunks).toString(),
            }),
          );
          res.on("error", reject);
        },
      );
      req.on("error", reject);
      req.end(body);
    }),
    EVENT_TIMEOUT_MS,
    `${method} ${url}`,
  );
}

/** A plain TCP connection to the cluster's port; resolves once connected. */
function rawConnection(url) {
  const { port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: "127.0.0.1", port: Number(port) });
    socket.once("connect", () => resolve(socket));
    socket.once("error", reject);
  });
}

/** Everything `socket` receives until the peer closes it. */
function readToEnd(socket) {
  return withTimeout(
    new Promise((resolve) => {
      const chunks = [];
      socket.on("data", (chunk) => chunks.push(chunk));
      socket.on("error", () => {});
      socket.on("close", () => resolve(Buffer.concat(chunks).toString("latin1")));
    }),
    EVENT_TIMEOUT_MS,
    "the server to answer and close",
  );
}

/** The SHA-256 fingerprint of the certificate a new handshake gets. */
function servedFingerprint(url) {
  const { port } = new URL(url);
  return withTimeout(
    new Promise((resolve, reject) => {
      const socket = tls.connect(
        { host: "127.0.0.1", port: Number(port), ca: certificates.caPem, ALPNProtocols: ["http/1.1"] },
        () => {
          const fingerprint = socket.getPeerCertificate().fingerprint256;
          assert.equal(socket.alpnProtocol, "http/1.1");
          socket.end();
          resolve(fingerprint);
        },
      );
      socket.on("error", reject);
    }),
    EVENT_TIMEOUT_MS,
    "a TLS handshake",
  );
}

describe("HTTPS on the public port", () => {
  let cluster;

  before(async () => {
    cluster = await startCluster({
      workers: WORKERS,
      args: [
        "--tls-cert", first.cert,
        "--tls-key", first.key,
        "--max-payload", "2000000",
        "--shutdown-timeout", "2s",
      ],
    });
    assert.match(cluster.url, /^https:\/\/127\.0\.0\.1:\d+$/);
  });

  after(async () => {
    await cluster?.stop();
  });

  for (const { name, transports } of TRANSPORTS) {
    test(`${name}: connects and echoes text and 1 MB of binary`, async () => {
      const socket = client(cluster.url, { transports });
      try {
        const worker = await connect(socket);
        assert.ok((await cluster.readyPids()).includes(worker));
        if (transports.length > 1) await upgraded(socket);
        assert.equal(socket.io.engine.transport.name, transports.at(-1));
        assert.equal(await socket.timeout(EVENT_TIMEOUT_MS).emitWithAck("echo", "hello"), "hello");
        const large = largeMessage();
        const echoed = toBuffer(
          await socket.timeout(LARGE_TIMEOUT_MS).emitWithAck("echo", large),
        );
        assert.ok(echoed.equals(large), "the 1 MB echo differs");
      } finally {
        socket.disconnect();
      }
    });
  }

  test("a broadcast reaches clients on all three workers", async () => {
    const sockets = [];
    const byWorker = new Map();
    try {
      // Clients from different addresses until every worker has some.
      for (let n = 0; byWorker.size < WORKERS; n++) {
        assert.ok(n < 60, `60 addresses reached only workers ${[...byWorker.keys()]}`);
        const socket = client(cluster.url, {
          transports: n % 2 ? ["websocket"] : ["polling", "websocket"],
          localAddress: sourceAddress(n),
        });
        sockets.push(socket);
        const worker = await connect(socket);
        byWorker.set(worker, (byWorker.get(worker) ?? 0) + 1);
      }
      const received = sockets.map((socket) =>
        waitFor(socket, "broadcast", EVENT_TIMEOUT_MS, { failOn: ["disconnect"] }),
      );
      await sockets[0].timeout(EVENT_TIMEOUT_MS).emitWithAck("broadcast", "to all");
      for (const args of await Promise.all(received)) assert.equal(args, "to all");
    } finally {
      for (const socket of sockets) socket.disconnect();
    }
  });

  test(`${HANDSHAKES} polling handshakes, each followed at once by a request on a new connection`, async () => {
    const base = `${cluster.url}/socket.io/?EIO=4&transport=polling`;
    let next = 0;
    const failures = [];
    const one = async (n) => {
      // Half the follow-ups come from the handshake's address (the same
      // worker), half from another (a client that changed address: the
      // worker it reaches forwards the request to the session's).
      const from = sourceAddress(n);
      const then = n % 2 ? from : sourceAddress(n + 1);
      const handshake = await request(base, { localAddress: from });
      assert.equal(handshake.status, 200, handshake.body);
      const sid = JSON.parse(handshake.body.slice(1)).sid;
      const connected = await request(`${base}&sid=${encodeURIComponent(sid)}`, {
        method: "POST",
        body: "40",
        localAddress: then,
      });
      if (connected.status !== 200 || connected.body !== "ok") {
        failures.push(`${n}: ${connected.status} ${connected.body}`);
      }
      // Close the session so that 2,000 do not wait for their ping timeout.
      await request(`${base}&sid=${encodeURIComponent(sid)}`, {
        method: "POST",
        body: "1",
        localAddress: from,
      });
    };
    await Promise.all(
      Array.from({ length: HANDSHAKE_CONCURRENCY }, async () => {
        while (next < HANDSHAKES) await one(next++);
      }),
    );
    assert.deepEqual(failures.slice(0, 10), [], `${failures.length} follow-ups failed`);
    await cluster.waitForNoSessions();
  });

  test("a plain-HTTP request on the port gets a clear 400", async () => {
    const socket = await rawConnection(cluster.url);
    const answer = readToEnd(socket);
    socket.write("GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    const text = await answer;
    assert.match(text, /^HTTP\/1\.1 400 /);
    assert.match(text, /This port speaks HTTPS/);
  });

  test("garbage, plain HTTP and 500 stalled handshakes disturb no one", async () => {
    const socket = client(cluster.url, { transports: ["websocket"] });
    const stalled = [];
    try {
      await connect(socket);
      // 500 connections that send the first bytes of a TLS record and stop.
      for (let i = 0; i < STALLED; i++) {
        const raw = await rawConnection(cluster.url);
        raw.on("error", () => {});
        raw.write(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01]));
        stalled.push(raw);
      }
      // A handshake record full of garbage: closed without an answer.
      const garbage = await rawConnection(cluster.url);
      const garbageAnswer = readToEnd(garbage);
      garbage.write(Buffer.concat([Buffer.from([0x16, 0x03, 0x03, 0x00, 0x40]), Buffer.alloc(64, 0xab)]));
      const answered = await garbageAnswer;
      assert.ok(!answered.startsWith("HTTP/"), `garbage got ${JSON.stringify(answered)}`);
      // Plain HTTP at the same time.
      const plain = await rawConnection(cluster.url);
      const plainAnswer = readToEnd(plain);
      plain.write("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
      assert.match(await plainAnswer, /^HTTP\/1\.1 400 /);
      // The connected client and a new one go on as before.
      assert.equal(await socket.timeout(EVENT_TIMEOUT_MS).emitWithAck("echo", "still here"), "still here");
      const fresh = client(cluster.url, { transports: ["polling", "websocket"], localAddress: sourceAddress(7) });
      try {
        await connect(fresh);
        await upgraded(fresh);
        assert.equal(await fresh.timeout(EVENT_TIMEOUT_MS).emitWithAck("echo", "new"), "new");
      } finally {
        fresh.disconnect();
      }
    } finally {
      socket.disconnect();
      for (const raw of stalled) raw.destroy();
    }
  });

  test("SIGHUP reloads the certificate and keeps every session", async () => {
    assert.equal(await servedFingerprint(cluster.url), first.fingerprint);
    const pids = (await cluster.readyPids()).sort();
    const sockets = TRANSPORTS.map(({ transports }, n) =>
      client(cluster.url, { transports, localAddress: sourceAddress(20 + n) }),
    );
    const disconnects = [];
    try {
      for (const socket of sockets) {
        await connect(socket);
        socket.on("disconnect", (reason) => disconnects.push(reason));
      }
      await upgraded(sockets[1]);
      const sessions = sockets.map((s) => s.io.engine.id);

      const second = certificates.issue("renewed");
      copyFileSync(second.cert, first.cert);
      copyFileSync(second.key, first.key);
      sendSignal(cluster.pid, "SIGHUP");
      // No event says the workers have read the files: new handshakes are
      // tried until one gets the new certificate.
      const deadline = Date.now() + EVENT_TIMEOUT_MS;
      while ((await servedFingerprint(cluster.url)) !== second.fingerprint) {
        assert.ok(Date.now() < deadline, "the new certificate is not served");
        await new Promise((resolve) => setTimeout(resolve, 50));
      }

      for (const [n, socket] of sockets.entries()) {
        assert.equal(await socket.timeout(EVENT_TIMEOUT_MS).emitWithAck("echo", n), n);
        assert.equal(socket.io.engine.id, sessions[n]);
      }
      assert.deepEqual(disconnects, []);
      assert.deepEqual((await cluster.readyPids()).sort(), pids, "workers were restarted");
    } finally {
      for (const socket of sockets) socket.disconnect();
    }
  });

  test("SIGUSR2 rolls the workers", async () => {
    const pids = await cluster.readyPids();
    sendSignal(cluster.pid, "SIGUSR2");
    await cluster.waitForReadyWorkers(WORKERS, { without: pids });
    const socket = client(cluster.url, { transports: ["websocket"] });
    try {
      const worker = await connect(socket);
      assert.ok(!pids.includes(worker));
    } finally {
      socket.disconnect();
    }
  });
});

describe("HTTPS with --tls-redirect", () => {
  let cluster;

  before(async () => {
    cluster = await startCluster({
      workers: 1,
      args: ["--tls-cert", first.cert, "--tls-key", first.key, "--tls-redirect"],
    });
  });

  after(async () => {
    await cluster?.stop();
  });

  test("a plain-HTTP request is redirected to https://", async () => {
    const socket = await rawConnection(cluster.url);
    const answer = readToEnd(socket);
    socket.write("GET /chat?room=a HTTP/1.1\r\nHost: example.test:8443\r\n\r\n");
    const text = await answer;
    assert.match(text, /^HTTP\/1\.1 301 /);
    assert.match(text, /\r\nlocation: https:\/\/example\.test:8443\/chat\?room=a\r\n/i);
  });

  test("HTTPS is served as usual", async () => {
    const health = await request(`${cluster.url}/health`);
    assert.equal(health.status, 200);
    assert.deepEqual(JSON.parse(health.body), { status: "ok" });
  });
});

/** Runs the master with `args`; resolves with its exit code and stderr. */
function failedStart(args) {
  const child = spawnTied(clusterBinary(), ["--port", "0", "--workers", "1", ...args]);
  let stderr = "";
  child.stderr.on("data", (chunk) => {
    stderr += chunk;
  });
  return withTimeout(
    new Promise((resolve) => child.once("exit", (code) => resolve({ code, stderr }))),
    EVENT_TIMEOUT_MS,
    "the master to refuse to start",
  );
}

describe("a certificate that does not load", () => {
  test("a missing file stops the master at startup, naming it", async () => {
    const missing = `${certificates.dir}/missing.crt`;
    const { code, stderr } = await failedStart(["--tls-cert", missing, "--tls-key", first.key]);
    assert.notEqual(code, 0);
    assert.ok(stderr.includes(missing), stderr);
  });

  test("a key of another certificate stops the master at startup", async () => {
    const other = certificates.issue("other");
    const { code, stderr } = await failedStart(["--tls-cert", first.cert, "--tls-key", other.key]);
    assert.notEqual(code, 0);
    assert.match(stderr, /do not go together/);
  });

  test("--tls-cert without --tls-key is refused", async () => {
    const { code, stderr } = await failedStart(["--tls-cert", first.cert]);
    assert.notEqual(code, 0);
    assert.match(stderr, /--tls-key/);
  });
});

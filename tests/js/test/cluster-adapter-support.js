// Helpers of cluster-adapter.test.js (and of bench/fanout.mjs): start the
// `iocluster` master with a worker program and read its admin endpoint; open
// many Socket.IO clients with bounded concurrency, each logging what it
// receives so that a test can count deliveries per client and wait for a
// marker instead of sleeping.
//
// Binaries: `IOCLUSTER_TARGET_DIR` (the debug dir, as support.js), else
// `$CARGO_TARGET_DIR/<profile>`, else `<repo>/target/<profile>`.

import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";

import { io } from "socket.io-client";

import { REPO_ROOT, waitFor, withTimeout } from "./support.js";

/** How long the master may take to print its addresses and get its workers ready. */
const START_TIMEOUT_MS = 15_000;
/** How long the master may take to exit after SIGTERM before it gets SIGKILL. */
const STOP_TIMEOUT_MS = 10_000;
/** How often the admin endpoint is asked while waiting for a worker state. */
const STATUS_POLL_MS = 50;
/** Connecting one client and getting its `welcome`. */
const WELCOME_TIMEOUT_MS = 10_000;
/** An ack from the worker program. */
export const ACK_TIMEOUT_MS = 10_000;

/** The dir holding `iocluster` and `examples/` for `profile`. */
export function binaryDir(profile = "debug") {
  if (profile === "debug" && process.env.IOCLUSTER_TARGET_DIR) {
    return path.resolve(REPO_ROOT, process.env.IOCLUSTER_TARGET_DIR);
  }
  const target = process.env.CARGO_TARGET_DIR
    ? path.resolve(REPO_ROOT, process.env.CARGO_TARGET_DIR)
    : path.join(REPO_ROOT, "target");
  return path.join(target, profile);
}

function sendSignal(pid, name) {
  try {
    process.kill(pid, name);
  } catch (error) {
    if (error.code !== "ESRCH") throw error; // already gone is fine
  }
}

/**
 * A running master: `url`, `adminUrl`, `pid`; its workers' state from the
 * admin endpoint; `stop()` ends it by its PID.
 */
export class RunningCluster {
  constructor(child) {
    this.child = child;
    this.pid = child.pid;
    this.output = "";
    this.exited = new Promise((resolve) => {
      child.once("exit", (code, signal) => resolve({ code, signal }));
    });
    const keep = (chunk) => {
      this.output = (this.output + chunk.toString()).slice(-8_192);
    };
    child.stdout.on("data", keep);
    child.stderr.on("data", keep);
  }

  /** The admin endpoint's `/status` JSON. */
  async status() {
    const response = await fetch(this.adminUrl, {
      signal: AbortSignal.timeout(2_000),
    });
    if (!response.ok) throw new Error(`admin status ${response.status}`);
    return response.json();
  }

  /** The pids of the workers that are ready. */
  async readyPids() {
    const { workers } = await this.status();
    return workers.filter((w) => w.ready).map((w) => w.pid);
  }

  /**
   * Waits until the admin endpoint reports a state `check(status)` accepts;
   * there is no event for it, so the endpoint is asked every 50 ms.
   */
  async waitForStatus(check, what, timeoutMs = START_TIMEOUT_MS) {
    const deadline = Date.now() + timeoutMs;
    let last;
    for (;;) {
      last = await this.status();
      if (check(last)) return last;
      if (Date.now() > deadline) {
        throw new Error(
          `timed out after ${timeoutMs} ms waiting for ${what}; last status ${JSON.stringify(last)}`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, STATUS_POLL_MS));
    }
  }

  /** Waits until `count` workers are ready, none of them in `without`. */
  waitForReadyWorkers(count, { without = [] } = {}) {
    return this.waitForStatus(({ workers }) => {
      const ready = workers.filter((w) => w.ready && !w.draining);
      return (
        ready.length === count && !ready.some((w) => without.includes(w.pid))
      );
    }, `${count} ready workers`);
  }

  /** Waits until no worker holds an Engine.IO session any more. */
  waitForNoSessions() {
    return this.waitForStatus(
      ({ workers }) => workers.every((w) => w.sessions === 0),
      "every session to be closed",
    );
  }

  /**
   * Sends `signal` (SIGKILL by default) to worker `pid`, after checking it
   * is one of this master's workers.
   */
  async signalWorker(pid, signal = "SIGKILL") {
    const { workers } = await this.status();
    if (!workers.some((w) => w.pid === pid)) {
      throw new Error(`${pid} is not a worker of this cluster`);
    }
    process.kill(pid, signal);
  }

  /** Ends the master by its PID (SIGTERM, then SIGKILL) and waits for it. */
  async stop() {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    sendSignal(this.pid, "SIGTERM");
    try {
      await withTimeout(this.exited, STOP_TIMEOUT_MS, "iocluster to exit");
    } catch {
      sendSignal(this.pid, "SIGKILL");
      await withTimeout(this.exited, STOP_TIMEOUT_MS, "iocluster to die");
    }
  }
}

/**
 * Starts `iocluster --port 0 --admin 127.0.0.1:0 --workers N --balance B --
 * <worker example>` and resolves once it listens and its N workers are
 * ready.
 */
export async function startCluster({
  workers = 3,
  balance = "round-robin",
  worker = "cluster_test_worker",
  profile = "debug",
  env = {},
} = {}) {
  const dir = binaryDir(profile);
  const master = path.join(dir, "iocluster");
  const program = path.join(dir, "examples", worker);
  for (const binary of [master, program]) {
    if (!existsSync(binary)) {
      const flag = profile === "release" ? " --release" : "";
      throw new Error(
        `${binary} does not exist; build it with \`cargo build${flag} --examples --bins\``,
      );
    }
  }
  // Workers inherit the master's stderr; keep their logs to warnings.
  const child = spawn(
    master,
    [
      "--port",
      "0",
      "--admin",
      "127.0.0.1:0",
      "--workers",
      String(workers),
      "--balance",
      balance,
      "--shutdown-timeout",
      "5s",
      "--",
      program,
    ],
    {
      cwd: REPO_ROOT,
      env: { RUST_LOG: "warn", ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  const cluster = new RunningCluster(child);
  const addresses = new Promise((resolve, reject) => {
    let stdout = "";
    child.stdout.on("data", (chunk) => {
      stdout += chunk.toString();
      const listening = stdout.match(/iocluster listening on (http:\/\/\S+)/);
      const admin = stdout.match(/iocluster admin on (http:\/\/\S+)/);
      if (listening && admin) resolve({ url: listening[1], admin: admin[1] });
    });
    child.once("error", reject);
    cluster.exited.then(({ code, signal }) =>
      reject(
        new Error(
          `iocluster exited (code ${code}, signal ${signal}) before listening:\n${cluster.output}`,
        ),
      ),
    );
  });
  try {
    const { url, admin } = await withTimeout(
      addresses,
      START_TIMEOUT_MS,
      "iocluster to print its addresses",
    );
    cluster.url = url;
    cluster.adminUrl = admin;
    await cluster.waitForReadyWorkers(workers);
  } catch (error) {
    await cluster.stop();
    throw error;
  }
  return cluster;
}

/**
 * Runs `fn(item, index)` over `items`, at most `limit` at a time; resolves
 * with the results in order.
 */
export async function mapLimit(items, limit, fn) {
  const results = new Array(items.length);
  let next = 0;
  const lane = async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await fn(items[index], index);
    }
  };
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, lane),
  );
  return results;
}

/**
 * One Socket.IO client and what it received: each event's first argument
 * (the worker program sends one; the recovery offset that follows is
 * dropped), in order, and waiters checked on each arrival.
 */
export class TestClient {
  constructor(socket) {
    this.socket = socket;
    /** `[event, firstArgument]` in arrival order. */
    this.received = [];
    /** The last recovery offset received. */
    this.offset = undefined;
    this.waiters = new Set();
    socket.onAny((event, ...args) => {
      const last = args.at(-1);
      if (typeof last === "string" && args.length > 1) this.offset = last;
      this.received.push([event, args[0]]);
      for (const waiter of this.waiters) waiter();
    });
  }

  /** The socket id the worker announced in `welcome`. */
  get id() {
    return this.welcome.id;
  }

  /** The pid of the worker serving this client, from `welcome`. */
  get worker() {
    return this.welcome.worker;
  }

  /** How many `event`s arrived whose first argument passes `match`. */
  count(event, match = () => true) {
    return this.received.filter(([name, arg]) => name === event && match(arg))
      .length;
  }

  /** Resolves once `count(event, match) >= 1`; rejects after `timeoutMs`. */
  waitForEvent(event, match, timeoutMs = ACK_TIMEOUT_MS) {
    let waiter;
    const arrived = new Promise((resolve) => {
      waiter = () => {
        if (this.count(event, match) > 0) resolve();
      };
      this.waiters.add(waiter);
      waiter();
    });
    return withTimeout(
      arrived,
      timeoutMs,
      `"${event}" on client ${this.welcome?.id}`,
    ).finally(() => this.waiters.delete(waiter));
  }

  /** Resolves once marker `marker` arrived. */
  waitForMarker(marker, timeoutMs) {
    return this.waitForEvent("marker", (m) => m === marker, timeoutMs);
  }

  /**
   * Emits `event` with `args` and resolves with the ack's first argument;
   * rejects when none comes within `ACK_TIMEOUT_MS`.
   */
  async ack(event, ...args) {
    try {
      return await this.socket
        .timeout(ACK_TIMEOUT_MS)
        .emitWithAck(event, ...args);
    } catch (error) {
      throw new Error(`no ack for "${event}" on client ${this.id}: ${error}`);
    }
  }
}

/** Clients opened by a test group, closed together. */
export class ClientPool {
  constructor(url) {
    this.url = url;
    this.clients = new Set();
  }

  /**
   * A connected client of namespace `nsp` that got its `welcome`.
   * Reconnection is off unless `options` turn it on.
   */
  async open(options = {}, nsp = "/") {
    const socket = io(`${this.url}${nsp}`, {
      forceNew: true,
      reconnection: false,
      ...options,
    });
    const client = new TestClient(socket);
    this.clients.add(client);
    client.welcome = await waitFor(socket, "welcome", WELCOME_TIMEOUT_MS, {
      failOn: ["connect_error"],
    });
    return client;
  }

  /** `count` clients, `concurrency` connecting at a time. */
  openMany(count, options = {}, concurrency = 50) {
    return mapLimit(Array.from({ length: count }), concurrency, () =>
      this.open(options),
    );
  }

  /** Closes every client. */
  closeAll() {
    for (const client of this.clients) {
      client.socket.io.reconnection(false);
      client.socket.disconnect();
    }
    this.clients.clear();
  }
}

/**
 * Waits until every client in `clients` received every marker in
 * `markers`: after that, each client's log holds everything sent to it
 * before the markers by the same senders.
 */
export function waitForMarkers(clients, markers, timeoutMs = ACK_TIMEOUT_MS) {
  return Promise.all(
    clients.flatMap((client) =>
      markers.map((marker) => client.waitForMarker(marker, timeoutMs)),
    ),
  );
}

// Delivery under a jittery network and under a reconnect storm, with and
// without connection state recovery (issue 14's benchmarks; not a test).
//
//   cargo build --release --bins
//   cd tests/js/redis && node bench/jitter.mjs            # MODE=jitter
//   MODE=avalanche CLIENTS=10000 node bench/jitter.mjs
//
// SERVER picks what the clients talk to:
//   iocluster            target/release/iocluster --workers 2 --recovery
//   iocluster-plain      the same without --recovery
//   node                 one Node socket.io 4.8 process with
//                        connectionStateRecovery (bench/node-recovery-server.mjs)
//
// MODE=jitter (AnyCable's benchmark, shape for shape): CLIENTS (2000)
// WebSocket clients, a sender broadcasting RATE (20) numbered messages per
// second for DURATION_S (60) s, and every DROP_EVERY_MS (2000) ms a share
// DROP_SHARE (0.1) of the clients, chosen at random, lose their connection
// abruptly (the TCP socket reset under them) and reconnect (socket.io's
// default reconnection: 1 s ± 50 %).
//
// MODE=avalanche: CLIENTS (10000) clients and a sender at RATE (5)/s; after
// 5 s every worker of the node is killed with SIGKILL at once (the master
// starts new ones); every client reconnects at once. Measures the time
// from the kill until every client is connected again and has every
// number, and the clients that got `recovered: false`.
//
// Both end with the sender stopped and a grace until every client has
// every number (at most GRACE_MS, 20 s), then report per client: every
// number the server broadcast exactly once and in order ("perfect"),
// numbers missing, duplicates, numbers older than the one before them; and
// delivered / broadcast over all clients. A number the sender emitted but
// lost with its own connection (at most once, client to server) was never
// broadcast: counted apart as lost_before_broadcast.
// One JSON line on stdout, a summary on stderr.

import { spawn } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

import { io } from "socket.io-client";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, "../../../..");
const env = (name, fallback) => process.env[name] ?? fallback;
const MODE = env("MODE", "jitter");
const SERVER = env("SERVER", "iocluster");
const CLIENTS = Math.min(Number(env("CLIENTS", MODE === "avalanche" ? 10_000 : 2_000)), 15_000);
const RATE = Number(env("RATE", MODE === "avalanche" ? 5 : 20));
const DURATION_S = Math.min(Number(env("DURATION_S", MODE === "avalanche" ? 20 : 60)), 300);
const DROP_EVERY_MS = Number(env("DROP_EVERY_MS", 2000));
const DROP_SHARE = Number(env("DROP_SHARE", 0.1));
const GRACE_MS = Math.min(Number(env("GRACE_MS", 20_000)), 60_000);
const PORT = Number(env("PORT", 27400));
const ADMIN_PORT = PORT + 1;
const CONNECT_CONCURRENCY = 200;
const SOURCES = 16;

/** When the avalanche's kill happened (ms since the epoch), once it has. */
let killedAt = null;
/** When the run started. */
const T0 = Date.now();

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function targetDir() {
  return process.env.CARGO_TARGET_DIR ?? path.join(ROOT, "target");
}

/** Starts the server; resolves `{url, pid, stop, workerPids}`. */
async function startServer() {
  let child;
  if (SERVER === "node") {
    child = spawn(process.execPath, [path.join(HERE, "node-recovery-server.mjs"), String(PORT)], {
      stdio: ["ignore", "inherit", "inherit"],
    });
  } else {
    const args = ["--port", String(PORT), "--admin", `127.0.0.1:${ADMIN_PORT}`, "--workers", "2"];
    if (SERVER === "iocluster") args.push("--recovery");
    else if (SERVER !== "iocluster-plain") throw new Error(`unknown SERVER ${SERVER}`);
    child = spawn(path.join(targetDir(), "release/iocluster"), args, {
      stdio: ["ignore", "ignore", "inherit"],
      env: { ...process.env, RUST_LOG: "warn" },
    });
  }
  const url = `http://127.0.0.1:${PORT}`;
  for (let i = 0; ; i++) {
    try {
      const response = await fetch(`${url}/socket.io/?EIO=4&transport=polling`);
      if (response.ok) break;
    } catch {}
    if (i > 200) throw new Error("the server did not start");
    await sleep(100);
  }
  const workerPids = () =>
    readdirSync("/proc")
      .filter((name) => /^\d+$/.test(name))
      .filter((pid) => {
        try {
          const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
          return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]) === child.pid;
        } catch {
          return false;
        }
      })
      .map(Number);
  const stop = async () => {
    child.kill("SIGTERM");
    await Promise.race([new Promise((r) => child.once("exit", r)), sleep(5000)]);
    child.kill("SIGKILL");
  };
  return { url, pid: child.pid, stop, workerPids };
}

/** A client counting numbered broadcasts. */
class Receiver {
  constructor(url, index) {
    this.last = -1; // the number received last
    this.missing = 0;
    this.duplicates = 0;
    this.outOfOrder = 0;
    this.received = 0;
    this.reconnects = 0;
    this.recovered = 0;
    this.notRecovered = 0;
    this.connectErrors = 0;
    this.seen = new Set();
    this.order = []; // every number, as received
    this.history = []; // drops and reconnects, for the clients that miss a number
    this.socket = io(url, {
      transports: ["websocket"],
      forceNew: true,
      localAddress: `127.0.0.${1 + (index % SOURCES)}`,
    });
    this.socket.on("connect", () => {
      if (this.connectedOnce) {
        if (killedAt !== null && this.backAfterMs === undefined) this.backAfterMs = Date.now() - killedAt;
        this.reconnects++;
        this.history.push(`${this.socket.recovered ? "recovered" : "reconnected"} at ${Date.now() - T0} ms via ${this.socket.io.engine?.id}`);
        if (this.socket.recovered) this.recovered++;
        else this.notRecovered++;
      }
      this.connectedOnce = true;
    });
    this.socket.on("connect_error", () => this.connectErrors++);
    this.socket.on("broadcast", (n) => this.onNumber(n));
  }

  onNumber(n) {
    if (typeof n !== "number") return;
    this.received++;
    this.order.push(n);
    if (this.seen.has(n)) {
      this.duplicates++;
      return;
    }
    this.seen.add(n);
    if (n < this.last) this.outOfOrder++; // an older number after a newer one
    this.last = n;
  }

  /** Cuts the TCP connection under the client with a reset. */
  drop() {
    const raw = this.socket.io.engine?.transport?.ws?._socket;
    if (!raw) return false;
    raw.resetAndDestroy();
    this.history.push(`drop after ${this.last} at ${Date.now() - T0} ms`);
    return true;
  }

  hasAll(sent) {
    return this.socket.connected && this.seen.size === sent;
  }
}

/** CPU seconds used so far by `pid` and its children that are alive, and by this process. */
function cpuSeconds(pid, children) {
  const ticks = (p) => {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      return Number(fields[11]) + Number(fields[12]);
    } catch {
      return 0;
    }
  };
  const server = [pid, ...children].reduce((sum, p) => sum + ticks(p), 0) / 100;
  const own = process.cpuUsage();
  return { server, clients: (own.user + own.system) / 1e6 };
}

/** p50, p90, p99 and max of `ms`, in seconds. */
function percentiles(ms) {
  const sorted = [...ms].sort((a, b) => a - b);
  const at = (q) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] / 1000 : null);
  return { p50: at(0.5), p90: at(0.9), p99: at(0.99), max: sorted.length ? sorted[sorted.length - 1] / 1000 : null };
}

async function connectAll(url) {
  const receivers = [];
  for (let i = 0; i < CLIENTS; i += CONNECT_CONCURRENCY) {
    const batch = [];
    for (let j = i; j < Math.min(CLIENTS, i + CONNECT_CONCURRENCY); j++) {
      const receiver = new Receiver(url, j);
      receivers.push(receiver);
      batch.push(
        new Promise((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error(`client ${j} did not connect`)), 20_000);
          receiver.socket.once("connect", () => {
            clearTimeout(timer);
            resolve();
          });
        }),
      );
    }
    await Promise.all(batch);
  }
  return receivers;
}

async function main() {
  const server = await startServer();
  const started = Date.now();
  let receivers = [];
  let sender;
  try {
    receivers = await connectAll(server.url);
    const connectSeconds = (Date.now() - started) / 1000;
    sender = io(server.url, { transports: ["websocket"], forceNew: true });
    await new Promise((resolve) => sender.once("connect", resolve));
    // The sender listens to its own broadcasts: it is not counted.

    let sent = 0;
    let drops = 0;
    let avalanche;
    const sendTimer = setInterval(() => {
      sender.emit("broadcast", sent++);
    }, 1000 / RATE);
    const endAt = Date.now() + DURATION_S * 1000;
    if (MODE === "jitter") {
      while (Date.now() < endAt) {
        await sleep(Math.min(DROP_EVERY_MS, endAt - Date.now()));
        if (Date.now() >= endAt) break;
        for (const receiver of receivers) {
          if (Math.random() < DROP_SHARE && receiver.drop()) drops++;
        }
      }
    } else if (MODE === "avalanche") {
      await sleep(5000);
      const pids = server.workerPids();
      const cpuBefore = cpuSeconds(server.pid, []);
      killedAt = Date.now();
      for (const pid of pids) process.kill(pid, "SIGKILL");
      avalanche = { killed: pids.length, killedAt };
      // Until every client is back and has every number sent so far.
      while (Date.now() < endAt) {
        await sleep(50);
        if (avalanche.allConnectedSeconds === undefined && receivers.every((r) => r.socket.connected && r.reconnects > 0)) {
          avalanche.allConnectedSeconds = (Date.now() - killedAt) / 1000;
        }
        const target = sent - RATE; // allow one second of transit
        if (receivers.every((r) => r.socket.connected && r.reconnects > 0 && r.seen.size >= target)) {
          avalanche.allBackSeconds = (Date.now() - killedAt) / 1000;
          // The killed workers' CPU is gone with them: the master's and
          // the new workers' until now, against the clients' process.
          const cpuAfter = cpuSeconds(server.pid, server.workerPids());
          avalanche.cpu = {
            server_s: cpuAfter.server - cpuBefore.server,
            clients_s: cpuAfter.clients - cpuBefore.clients,
          };
          break;
        }
      }
      while (Date.now() < endAt) await sleep(100);
    } else {
      throw new Error(`unknown MODE ${MODE}`);
    }
    clearInterval(sendTimer);
    // The sender's own last emits must reach the server: wait for an ack.
    const graceEnd = Date.now() + GRACE_MS;
    while (Date.now() < graceEnd && !receivers.every((r) => r.hasAll(sent))) await sleep(100);
    await sleep(500); // late deliveries of numbers a lost emit left out

    // What the server broadcast: every number some client got. An emit of
    // the sender lost with its connection (socket.io is at most once from
    // client to server too) never was, and is counted apart.
    const broadcast = new Set();
    for (const r of receivers) for (const n of r.seen) broadcast.add(n);
    const expected = [...broadcast].sort((a, b) => a - b);
    const inOrder = (r) => r.order.length === expected.length && r.order.every((n, i) => n === expected[i]);
    const perfect = receivers.filter(inOrder).length;
    const delivered = receivers.reduce((sum, r) => sum + r.seen.size, 0);
    const sum = (key) => receivers.reduce((total, r) => total + r[key], 0);
    // The first clients that did not get every number once and in order:
    // what they missed and what happened to their connection.
    const imperfect = receivers
      .filter((r) => !inOrder(r))
      .slice(0, 10)
      .map((r) => ({
        missing: expected.filter((n) => !r.seen.has(n)).slice(0, 20),
        history: r.history,
      }));
    const report = {
      mode: MODE,
      server: SERVER,
      clients: CLIENTS,
      rate: RATE,
      duration_s: DURATION_S,
      sent,
      broadcast: expected.length,
      lost_before_broadcast: sent - expected.length,
      drops,
      connect_seconds: connectSeconds,
      perfect_clients: perfect,
      delivered_share: delivered / (expected.length * CLIENTS),
      missing: expected.length * CLIENTS - delivered,
      duplicates: sum("duplicates"),
      out_of_order: sum("outOfOrder"),
      reconnects: sum("reconnects"),
      recovered: sum("recovered"),
      not_recovered: sum("notRecovered"),
      connect_errors: sum("connectErrors"),
      imperfect,
      ...(avalanche
        ? {
            workers_killed: avalanche.killed,
            all_connected_seconds: avalanche.allConnectedSeconds ?? null,
            all_back_seconds: avalanche.allBackSeconds ?? null,
            storm_cpu: avalanche.cpu ?? null,
            reconnected_after_s: percentiles(receivers.map((r) => r.backAfterMs).filter((ms) => ms !== undefined)),
          }
        : {}),
    };
    console.log(JSON.stringify(report));
    console.error(
      `${MODE} against ${SERVER}: ${sent} emitted (${expected.length} broadcast) to ${CLIENTS} clients, ${drops} drops, ` +
        `${report.reconnects} reconnects (${report.recovered} recovered); ` +
        `${perfect} clients with every number once and in order; ` +
        `${(report.delivered_share * 100).toFixed(2)} % delivered, ${report.duplicates} duplicates, ` +
        `${report.out_of_order} out of order, ${report.connect_errors} connect errors` +
        (avalanche
          ? `; ${avalanche.killed} workers killed: all reconnected after ${avalanche.allConnectedSeconds ?? "never"} s, ` +
            `all with every number after ${avalanche.allBackSeconds ?? "never"} s`
          : ""),
    );
  } finally {
    sender?.close();
    for (const receiver of receivers) receiver.socket.close();
    await server.stop();
  }
}

main().then(
  () => process.exit(0),
  (error) => {
    console.error(error);
    process.exit(2);
  },
);

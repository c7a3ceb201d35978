// Broadcast latency and deliveries per second across two servers synced by
// Redis: two `iocluster --redis` nodes, then two Node socket.io 4.8 servers
// with @socket.io/redis-adapter, driven by the same clients.
//
//   cargo build --release --bins
//   cd tests/js/redis && node bench/fanout.mjs
//
// Options from the environment (bounded: at most 500 clients, 20 s of
// broadcasting per run):
//   SETUPS (iocluster,node), CLIENTS (200, half on each server), RATE
//   (broadcasts per second, 50), DURATION_MS (10000), WORKERS (workers per
//   iocluster node, 1: one process per server, as the Node servers),
//   BIN (../../../target/release/iocluster).
//
// Each run starts its own redis-server on a free loopback port and its two
// servers, and stops them (by PID) at the end. One extra client on server A
// emits `broadcast({t})` RATE times a second (t: the sender's clock; the
// clients share this process and its clock); every client records the
// latency of each delivery. Reported: p50/p99/max latency over all clients
// and over server B's (every delivery there crossed Redis), deliveries per
// second (from the first emit to the last delivery) and deliveries lost.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import { dirname, resolve } from "node:path";
import { performance } from "node:perf_hooks";

import { startProcess, startRedis, stdoutMatches } from "../../test/processes.js";

const require = createRequire(import.meta.url);
const { io } = require("socket.io-client");
const { Redis } = require("ioredis");

const here = dirname(fileURLToPath(import.meta.url));
const env = (name, fallback) => process.env[name] ?? fallback;
const CLIENTS = Math.min(Number(env("CLIENTS", 200)), 500);
const RATE = Number(env("RATE", 50));
const DURATION_MS = Math.min(Number(env("DURATION_MS", 10_000)), 20_000);
const WORKERS = Number(env("WORKERS", 1));
const SETUPS = env("SETUPS", "iocluster,node").split(",");
const BIN = env("BIN", resolve(here, "../../../../target/release/iocluster"));
const STEP_MS = 10_000; // the bound of every wait
const DRAIN_MS = 3_000; // how long late deliveries are waited for

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function bounded(promise, what, ms = STEP_MS) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** CPU seconds (user + system) process `pid` has used, from /proc. */
function cpuSeconds(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / 100; // USER_HZ is 100
  } catch {
    return 0;
  }
}

/** `pid` and its descendants (an iocluster master's workers). */
function tree(pid) {
  let kids = [];
  try {
    kids = readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/).filter(Boolean);
  } catch {}
  return [pid, ...kids.flatMap((kid) => tree(Number(kid)))];
}

/** The processes of the current run, stopped (by PID) at its end. */
const children = [];
async function stopAll() {
  await Promise.allSettled(children.splice(0).map((child) => child.stop()));
}

async function startServers(setup, redisPort) {
  const urls = [];
  for (let i = 0; i < 2; i++) {
    let started;
    if (setup === "iocluster") {
      started = await startProcess(
        "iocluster",
        BIN,
        ["--port", "0", "--admin", "off", "--workers", String(WORKERS),
          "--redis", `redis://127.0.0.1:${redisPort}`],
        {
          ready: async (running) => {
            const [listening] = await stdoutMatches(running, [/iocluster listening on (http:\/\/[0-9.:]+)/]);
            running.url = listening[1];
          },
          timeoutMs: STEP_MS,
        },
      );
    } else {
      started = await startProcess(
        "node server",
        "node",
        [resolve(here, "node-server.mjs"), String(redisPort)],
        {
          stdin: "pipe",
          ready: async (running) => {
            const [line] = await stdoutMatches(running, [/^\{.*\}$/m]);
            running.url = `http://127.0.0.1:${JSON.parse(line[0]).port}`;
          },
          timeoutMs: STEP_MS,
        },
      );
    }
    children.push(started);
    urls.push(started.url);
  }
  // Every serving process subscribed: the request channel's subscribers.
  const redis = new Redis({ host: "127.0.0.1", port: redisPort });
  const expected = setup === "iocluster" ? 2 * WORKERS : 2;
  await bounded((async () => {
    for (;;) {
      const [, count] = await redis.pubsub("NUMSUB", "socket.io-request#/#");
      if (count >= expected) return;
      await sleep(50);
    }
  })(), "the servers to subscribe");
  redis.disconnect();
  return urls;
}

function connect(url, onBroadcast) {
  return bounded(new Promise((resolve, reject) => {
    const socket = io(url, { forceNew: true, reconnection: false, transports: ["websocket"] });
    socket.on("broadcast", onBroadcast);
    socket.once("connect", () => resolve(socket));
    socket.once("connect_error", reject);
  }), `a client to connect to ${url}`);
}

function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

function summary(latencies) {
  const sorted = Float64Array.from(latencies).sort();
  const f = (x) => x.toFixed(2);
  return `p50 ${f(percentile(sorted, 50))} ms, p99 ${f(percentile(sorted, 99))} ms, max ${f(sorted[sorted.length - 1] ?? NaN)} ms (${sorted.length})`;
}

async function run(setup) {
  const redisServer = await startRedis();
  children.push(redisServer);
  const redisPort = redisServer.port;
  const urls = await startServers(setup, redisPort);
  // The serving processes: the two servers (and an iocluster node's workers).
  const servers = children.slice(-2).flatMap((child) => tree(child.pid));
  const cpu = () => ({
    servers: servers.reduce((sum, pid) => sum + cpuSeconds(pid), 0),
    redis: cpuSeconds(redisServer.pid),
    clients: (process.cpuUsage().user + process.cpuUsage().system) / 1e6,
  });
  const latencies = { a: [], b: [] };
  let lastDelivery = 0;
  const clients = [];
  for (let i = 0; i < CLIENTS; i += 50) {
    const batch = [];
    for (let j = i; j < Math.min(i + 50, CLIENTS); j++) {
      const side = j % 2 === 0 ? "a" : "b";
      batch.push(connect(urls[j % 2], (m) => {
        const now = performance.now();
        latencies[side].push(now - m.t);
        lastDelivery = now;
      }));
    }
    clients.push(...(await Promise.all(batch)));
  }
  const sender = await connect(urls[0], () => {});
  await sleep(500); // connections settle

  let sent = 0;
  const cpuBefore = cpu();
  const first = performance.now();
  const deadline = first + DURATION_MS;
  await new Promise((resolve) => {
    const tick = setInterval(() => {
      const now = performance.now();
      if (now >= deadline) {
        clearInterval(tick);
        resolve();
        return;
      }
      // Catch up to RATE per second whatever the timer's jitter.
      const due = Math.floor(((now - first) / 1000) * RATE) + 1;
      for (; sent < due; sent++) sender.emit("broadcast", { t: performance.now(), s: sent });
    }, 5);
  });
  const expected = sent * CLIENTS;
  const received = () => latencies.a.length + latencies.b.length;
  const drainEnd = performance.now() + DRAIN_MS;
  while (received() < expected && performance.now() < drainEnd) await sleep(20);
  const got = received();
  const seconds = (lastDelivery - first) / 1000;
  const cpuAfter = cpu();
  const used = (k) => (cpuAfter[k] - cpuBefore[k]).toFixed(2);
  console.log(`\n== ${setup}${setup === "iocluster" ? ` (${WORKERS} worker(s) per node)` : ""}: ` +
    `${CLIENTS} clients on 2 servers, ${sent} broadcasts at ${RATE}/s`);
  console.log(`  deliveries: ${got}/${expected} (${expected - got} lost), ` +
    `${Math.round(got / seconds)} per second`);
  console.log(`  CPU seconds: servers ${used("servers")} (${servers.length} processes), ` +
    `redis ${used("redis")}, clients ${used("clients")}`);
  console.log(`  latency, all clients:           ${summary([...latencies.a, ...latencies.b])}`);
  console.log(`  latency, server B (cross-node): ${summary(latencies.b)}`);
  console.log(`  latency, server A (sender's):   ${summary(latencies.a)}`);
  for (const socket of [...clients, sender]) socket.close();
  await sleep(200);
  await stopAll();
  return expected - got;
}

// Exit status: 1 when iocluster lost a delivery (the test command runs a
// short smoke run of this script); a peer's losses are only reported.
let status = 0;
try {
  for (const setup of SETUPS) {
    const lost = await run(setup);
    if (setup === "iocluster" && lost > 0) status = 1;
  }
} finally {
  await stopAll();
}
process.exit(status);

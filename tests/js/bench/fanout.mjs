// Fan-out throughput of the cluster adapter: deliveries per second from one
// sender to CLIENTS websocket clients spread over WORKERS workers, through
// the release build of `iocluster` running examples/cluster_test_worker.rs.
//
//   cargo build --release --examples --bins
//   cd tests/js && node bench/fanout.mjs
//
// Options from the environment (bounded: at most 1,000 clients, the
// broadcast phase stops after DEADLINE_MS, 20 s by default):
//   CLIENTS (1000), WORKERS (2), BROADCASTS (2000), WINDOW (64: broadcasts
//   sent whose ack has not come back yet), DEADLINE_MS (20000).
//
// One client is the sender: it emits `broadcast` with an ack, keeping at
// most WINDOW acks outstanding (as fast as acks allow). Each broadcast is
// delivered to every client, the sender included; the clock runs from the
// first emit until every client has counted every broadcast.

import { readFileSync } from "node:fs";

import { io } from "socket.io-client";

import { mapLimit } from "../test/cluster-adapter-support.js";
import { startCluster } from "../test/processes.js";

const env = (name, fallback) => Number(process.env[name] ?? fallback);
const CLIENTS = Math.min(env("CLIENTS", 1000), 1000);
const WORKERS = env("WORKERS", 2);
const BROADCASTS = env("BROADCASTS", 2000);
const WINDOW = env("WINDOW", 64);
const DEADLINE_MS = Math.min(env("DEADLINE_MS", 20_000), 20_000);
const CONNECT_CONCURRENCY = 100;
const CONNECT_TIMEOUT_MS = 10_000;

/** CPU seconds (user + system) process `pid` has used, from /proc. */
function cpuSeconds(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  // Fields after the command name (which may hold spaces), from field 3.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const ticks = Number(fields[11]) + Number(fields[12]); // utime + stime
  return ticks / 100; // USER_HZ is 100 on Linux
}

/** CPU seconds of this process (the clients), the master and each worker. */
function cpuSnapshot(pids) {
  const own = process.cpuUsage();
  return {
    clients: (own.user + own.system) / 1e6,
    ...Object.fromEntries(pids.map(([name, pid]) => [name, cpuSeconds(pid)])),
  };
}

/** A connected websocket client counting the `broadcast`s it receives. */
function connect(url) {
  return new Promise((resolve, reject) => {
    const socket = io(url, {
      forceNew: true,
      reconnection: false,
      transports: ["websocket"],
    });
    const timer = setTimeout(() => {
      socket.close();
      reject(new Error("no welcome in time"));
    }, CONNECT_TIMEOUT_MS);
    const client = { socket, received: 0, worker: undefined };
    socket.once("connect_error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
    socket.once("welcome", ({ worker }) => {
      clearTimeout(timer);
      client.worker = worker;
      resolve(client);
    });
  });
}

async function main() {
  const cluster = await startCluster({
    workers: WORKERS,
    balance: "round-robin",
    args: ["--shutdown-timeout", "5s"],
    worker: "cluster_test_worker",
    profile: "release",
  });
  const clients = [];
  try {
    const opened = Date.now();
    const slots = Array.from({ length: CLIENTS });
    await mapLimit(slots, CONNECT_CONCURRENCY, async () => {
      clients.push(await connect(cluster.url));
    });
    const perWorker = {};
    for (const { worker } of clients) {
      perWorker[worker] = (perWorker[worker] ?? 0) + 1;
    }
    console.log(
      `${clients.length} websocket clients on ${WORKERS} workers in ${Date.now() - opened} ms:`,
      JSON.stringify(perWorker),
    );

    // Deliveries expected: every client gets every broadcast acked; known
    // once the sender is done.
    let target = Infinity;
    let delivered = 0;
    let allDelivered;
    const done = new Promise((resolve) => {
      allDelivered = resolve;
    });
    for (const client of clients) {
      client.socket.on("broadcast", () => {
        client.received += 1;
        delivered += 1;
        if (delivered >= target) allDelivered();
      });
    }

    const { master, workers } = await cluster.status();
    const pids = [
      ["master", master.pid],
      ...workers.map((w) => [`worker ${w.pid}`, w.pid]),
    ];
    const cpuBefore = cpuSnapshot(pids);
    const [sender] = clients;
    const deadline = Date.now() + DEADLINE_MS;
    const started = performance.now();
    let sent = 0;
    let acked = 0;
    const lane = async () => {
      while (sent < BROADCASTS && Date.now() < deadline) {
        sent += 1;
        await sender.socket
          .timeout(DEADLINE_MS)
          .emitWithAck("broadcast", { n: sent, text: "fan-out" });
        acked += 1;
      }
    };
    await Promise.all(Array.from({ length: WINDOW }, lane));
    const ackedAt = performance.now();
    target = acked * clients.length;
    if (delivered >= target) allDelivered();
    const left = Math.max(deadline - Date.now(), 0);
    let timer;
    const finished = await Promise.race([
      done.then(() => true),
      new Promise((resolve) => {
        timer = setTimeout(() => resolve(false), left);
      }),
    ]);
    clearTimeout(timer);
    const elapsed = (performance.now() - started) / 1000;
    const cpuAfter = cpuSnapshot(pids);
    const status = await cluster.status();

    console.log(
      `${acked} broadcasts acked in ${(ackedAt - started).toFixed(0)} ms ` +
        `(${(acked / ((ackedAt - started) / 1000)).toFixed(0)} broadcasts/s)`,
    );
    console.log(
      `${delivered} of ${acked * clients.length} deliveries in ${elapsed.toFixed(2)} s` +
        `${finished ? "" : " (deadline reached before every delivery)"}: ` +
        `${Math.round(delivered / elapsed)} deliveries/s`,
    );
    const cpu = Object.keys(cpuAfter).map(
      (name) => `${name} ${(cpuAfter[name] - cpuBefore[name]).toFixed(1)}`,
    );
    console.log(`CPU seconds meanwhile: ${cpu.join(", ")}`);
    console.log(
      "rss MiB:",
      JSON.stringify({
        master: Math.round(status.master.rss_bytes / 2 ** 20),
        workers: status.workers.map((w) => Math.round(w.rss_bytes / 2 ** 20)),
      }),
    );
    const short = clients.filter((c) => c.received !== acked).length;
    if (short > 0) console.log(`${short} clients did not get every broadcast`);
  } finally {
    for (const client of clients) client.socket.close();
    await cluster.stop();
  }
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});

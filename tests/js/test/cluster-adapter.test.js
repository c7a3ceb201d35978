// The cluster adapter end to end (issue "Every worker as one server without
// Redis: the cluster adapter through the master"): the real `iocluster`
// master running examples/cluster_test_worker.rs as 3 worker processes,
// balanced round-robin, and the official socket.io-client.
//
// Two groups of 300 clients, one over websocket and one over polling, spread
// over the 3 workers: broadcasts (to all, to a room, except a room), a
// broadcast with acks, fetch-sockets, remote join/leave/disconnect,
// server-side emits and the server count, all across workers. Then a worker
// killed with SIGKILL: a broadcast with acks stops waiting for it, and a
// client it served recovers its session elsewhere with what it missed.
// Two tests of known bugs are skipped until the fixes their comments
// describe land.
//
// "Exactly once and to no other" is checked without sleeping: each client
// counts what it receives, and each sender follows its broadcasts with a
// marker that every client receives. Frames from one worker reach every
// other worker in order (one stream through the master), so once a client
// has a sender's marker it has everything that sender sent it before.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { ClientPool, mapLimit, waitForMarkers } from "./cluster-adapter-support.js";
import { startCluster } from "./processes.js";
import { waitFor } from "./support.js";

const WORKERS = 3;
/** Clients per transport group. */
const CLIENTS = 300;
/** Clients connecting (or acking a setup event) at once. */
const CONCURRENCY = 50;
const TEST_TIMEOUT_MS = 30_000;
/** The timeout of broadcasts with acks and server-side emits, in ms. */
const REQUEST_TIMEOUT_MS = 5_000;

let cluster;

before(async () => {
  cluster = await startCluster({
    workers: WORKERS,
    balance: "round-robin",
    args: ["--shutdown-timeout", "5s"],
    worker: "cluster_test_worker",
  });
});

after(async () => {
  await cluster?.stop();
});

/** How many clients each worker pid serves. */
function perWorker(clients) {
  const counts = new Map();
  for (const client of clients) {
    counts.set(client.worker, (counts.get(client.worker) ?? 0) + 1);
  }
  return counts;
}

/**
 * The clients whose count of `event` with a payload passing `match`
 * differs from `expected(client)`, as `{id, got, want}`: empty when
 * delivery was exactly right.
 */
function wrongCounts(clients, event, match, expected) {
  return clients
    .map((client) => ({
      id: client.id,
      got: client.count(event, match),
      want: expected(client),
    }))
    .filter(({ got, want }) => got !== want);
}

for (const transport of ["websocket", "polling"]) {
  describe(`${CLIENTS} clients over ${transport} on ${WORKERS} workers`, () => {
    let pool;
    let clients;
    /** One client of each worker: the senders. */
    let senders;
    /** Clients with an even index are in room "even". */
    const inEven = (client) => client.index % 2 === 0;

    before(async () => {
      pool = new ClientPool(cluster.url);
      clients = await pool.openMany(
        CLIENTS,
        { transports: [transport] },
        CONCURRENCY,
      );
      // Every client answers a broadcast's question with its worker's pid.
      for (const client of clients) {
        client.socket.on("question", (ack) => ack(client.worker));
      }
      await mapLimit(clients, CONCURRENCY, async (client, index) => {
        client.index = index;
        await client.ack("set-data", { index, transport });
        if (inEven(client)) {
          assert.deepEqual(
            await client.ack("join", "even"),
            [client.id, "even"].sort(),
          );
        }
      });
      const pids = [...perWorker(clients).keys()];
      senders = pids.map((pid) => clients.find((c) => c.worker === pid));
    });

    after(async () => {
      pool?.closeAll();
      await cluster?.waitForNoSessions();
    });

    test(
      "round-robin spreads the clients evenly over the 3 workers the master runs",
      { timeout: TEST_TIMEOUT_MS },
      async () => {
        const counts = perWorker(clients);
        assert.deepEqual(
          [...counts.values()],
          Array(WORKERS).fill(CLIENTS / WORKERS),
        );
        const ready = await cluster.readyPids();
        assert.deepEqual([...counts.keys()].sort(), ready.sort());
      },
    );

    test(
      "a broadcast from each worker reaches every client exactly once",
      { timeout: TEST_TIMEOUT_MS },
      async () => {
        const tag = `all-${transport}`;
        const markers = await Promise.all(
          senders.map(async (sender, from) => {
            await sender.ack("broadcast", { tag, from });
            await sender.ack("marker", `${tag}-${from}`);
            return `${tag}-${from}`;
          }),
        );
        await waitForMarkers(clients, markers);
        senders.forEach((_, from) => {
          const ofSender = (p) => p?.tag === tag && p.from === from;
          assert.deepEqual(
            wrongCounts(clients, "broadcast", ofSender, () => 1),
            [],
          );
        });
      },
    );

    test(
      "a broadcast to a room reaches each member exactly once and no one else",
      { timeout: TEST_TIMEOUT_MS },
      async () => {
        const tag = `room-${transport}`;
        const markers = await Promise.all(
          senders.map(async (sender, from) => {
            await sender.ack("to-room", "even", { tag, from });
            await sender.ack("marker", `${tag}-${from}`);
            return `${tag}-${from}`;
          }),
        );
        await waitForMarkers(clients, markers);
        senders.forEach((_, from) => {
          const ofSender = (p) => p?.tag === tag && p.from === from;
          assert.deepEqual(
            wrongCounts(clients, "room-message", ofSender, (c) =>
              inEven(c) ? 1 : 0,
            ),
            [],
          );
        });
      },
    );

    test(
      "a broadcast except a room reaches each non-member exactly once and no member",
      { timeout: TEST_TIMEOUT_MS },
      async () => {
        const tag = `except-${transport}`;
        const markers = await Promise.all(
          senders.map(async (sender, from) => {
            await sender.ack("except-room", "even", { tag, from });
            await sender.ack("marker", `${tag}-${from}`);
            return `${tag}-${from}`;
          }),
        );
        await waitForMarkers(clients, markers);
        senders.forEach((_, from) => {
          const ofSender = (p) => p?.tag === tag && p.from === from;
          assert.deepEqual(
            wrongCounts(clients, "except-message", ofSender, (c) =>
              inEven(c) ? 0 : 1,
            ),
            [],
          );
        });
      },
    );

    test(
      "a broadcast with acks from each worker collects the 300 replies",
      { timeout: TEST_TIMEOUT_MS },
      async () => {
        for (const sender of senders) {
          const result = await sender.ack(
            "broadcast-with-ack",
            REQUEST_TIMEOUT_MS,
          );
          assert.equal(result.count, CLIENTS);
          assert.equal(result.expected, CLIENTS);
          assert.equal(result.complete, true);
          const byWorker = new Map();
          for (const pid of result.replies) {
            byWorker.set(pid, (byWorker.get(pid) ?? 0) + 1);
          }
          assert.deepEqual(byWorker, perWorker(clients));
        }
      },
    );

    test(
      "fetch-sockets from each worker returns the 300 sockets with their rooms and data",
      { timeout: TEST_TIMEOUT_MS },
      async () => {
        const expected = clients
          .map((client) => ({
            id: client.id,
            rooms: (inEven(client) ? [client.id, "even"] : [client.id]).sort(),
            data: { index: client.index, transport },
          }))
          .sort((a, b) => (a.id < b.id ? -1 : 1));
        for (const sender of senders) {
          assert.deepEqual(await sender.ack("fetch-sockets"), expected);
        }
      },
    );

    test(
      "server-side-emit reaches the two other workers and their acks come back",
      { timeout: TEST_TIMEOUT_MS },
      async () => {
        const pids = senders.map((sender) => sender.worker);
        for (const sender of senders) {
          const { replies, error } = await sender.ack(
            "server-side-emit",
            REQUEST_TIMEOUT_MS,
          );
          assert.equal(error, undefined);
          const others = pids.filter((pid) => pid !== sender.worker).sort();
          assert.deepEqual([...replies].sort(), others);
        }
      },
    );

    test(
      "server-count is 3 on every worker",
      { timeout: TEST_TIMEOUT_MS },
      async () => {
        for (const sender of senders) {
          assert.equal(await sender.ack("server-count"), WORKERS);
        }
      },
    );

    // Last of the group: it disconnects one of the clients.
    test(
      "remote join, leave and disconnect act on clients of other workers",
      { timeout: TEST_TIMEOUT_MS },
      async () => {
        const [sender, second, third] = senders;
        // Not senders, so that the checks see only what these operations did.
        const target = clients.find(
          (c) => c.worker === second.worker && c !== second,
        );
        const doomed = clients.find(
          (c) => c.worker === third.worker && c !== third,
        );
        const tag = `remote-${transport}`;
        const isTag = (suffix) => (p) => p?.tag === `${tag}-${suffix}`;

        assert.deepEqual(
          await sender.ack("remote-join", target.id, "special"),
          { found: 1 },
        );
        await sender.ack("to-room", "special", { tag: `${tag}-joined` });
        await sender.ack("marker", `${tag}-joined`);
        await waitForMarkers(clients, [`${tag}-joined`]);
        assert.deepEqual(
          wrongCounts(clients, "room-message", isTag("joined"), (c) =>
            c === target ? 1 : 0,
          ),
          [],
        );

        assert.deepEqual(
          await sender.ack("remote-leave", target.id, "special"),
          { found: 1 },
        );
        await sender.ack("to-room", "special", { tag: `${tag}-left` });
        await sender.ack("marker", `${tag}-left`);
        await waitForMarkers(clients, [`${tag}-left`]);
        assert.deepEqual(
          wrongCounts(clients, "room-message", isTag("left"), () => 0),
          [],
        );

        const disconnected = waitFor(doomed.socket, "disconnect", 5_000);
        disconnected.catch(() => {}); // awaited below, unless the ack fails
        assert.deepEqual(await sender.ack("remote-disconnect", doomed.id), {
          found: 1,
        });
        assert.equal(await disconnected, "io server disconnect");
        const sockets = await sender.ack("fetch-sockets");
        assert.equal(sockets.length, CLIENTS - 1);
        assert.ok(!sockets.some((s) => s.id === doomed.id));
        const targetNow = sockets.find((s) => s.id === target.id);
        assert.ok(!targetNow.rooms.includes("special"));
      },
    );
  });
}

describe("requests to workers that cannot answer", () => {
  let pool;

  before(() => {
    pool = new ClientPool(cluster.url);
  });

  after(async () => {
    pool?.closeAll();
    await cluster?.waitForNoSessions();
  });

  test(
    "a broadcast with acks in a namespace only one worker has returns once its clients replied",
    { timeout: TEST_TIMEOUT_MS },
    async () => {
      const client = await pool.open(
        { transports: ["websocket"] },
        `/dynamic-${process.pid}`,
      );
      client.socket.on("question", (ack) => ack(client.worker));
      const started = performance.now();
      const result = await client.ack("broadcast-with-ack", REQUEST_TIMEOUT_MS);
      const elapsed = performance.now() - started;
      assert.deepEqual(
        {
          count: result.count,
          expected: result.expected,
          complete: result.complete,
        },
        { count: 1, expected: 1, complete: true },
      );
      assert.ok(
        elapsed < REQUEST_TIMEOUT_MS / 2,
        `returned after ${Math.round(elapsed)} ms`,
      );
    },
  );

  test(
    "fetch-sockets with a timeout gives up on a frozen worker after that timeout",
    { timeout: TEST_TIMEOUT_MS },
    async () => {
      const clients = await pool.openMany(WORKERS, {
        transports: ["websocket"],
      });
      const [sender] = clients;
      const frozen = clients.find((c) => c.worker !== sender.worker).worker;
      await cluster.signalWorker(frozen, "SIGSTOP");
      try {
        const started = performance.now();
        const result = await sender.ack("fetch-sockets", 500);
        const elapsed = performance.now() - started;
        assert.match(String(result.error), /timeout/);
        assert.ok(elapsed < 2_000, `gave up after ${Math.round(elapsed)} ms`);
      } finally {
        await cluster.signalWorker(frozen, "SIGCONT");
      }
    },
  );
});

describe("a worker killed with SIGKILL", () => {
  let pool;

  before(() => {
    pool = new ClientPool(cluster.url);
  });

  after(() => {
    pool?.closeAll();
  });

  test(
    "a broadcast with acks in progress stops waiting for the killed worker at once",
    { timeout: TEST_TIMEOUT_MS },
    async () => {
      const clients = await pool.openMany(30, { transports: ["websocket"] });
      const [sender] = clients;
      const victim = clients.find((c) => c.worker !== sender.worker).worker;
      const victims = clients.filter((c) => c.worker === victim);
      const survivors = clients.filter((c) => c.worker !== victim);
      // The victim's clients never answer: only its death ends the wait.
      for (const client of survivors) {
        client.socket.on("question", (ack) => ack(client.worker));
      }

      const started = performance.now();
      const result = sender.ack("broadcast-with-ack", REQUEST_TIMEOUT_MS);
      result.catch(() => {}); // awaited below, unless a step before fails
      await Promise.all(victims.map((c) => c.waitForEvent("question")));
      await cluster.signalWorker(victim);
      const killed = performance.now();
      const { count, expected, replies } = await result;
      const elapsed = performance.now() - started;

      assert.ok(
        elapsed < REQUEST_TIMEOUT_MS / 2,
        `returned ${Math.round(elapsed)} ms after the broadcast, ` +
          `${Math.round(performance.now() - killed)} ms after the kill`,
      );
      assert.equal(count, survivors.length);
      assert.equal(expected, survivors.length);
      assert.ok(!replies.includes(victim));
      // The master replaces the killed worker.
      await cluster.waitForReadyWorkers(WORKERS, { without: [victim] });
    },
  );

  test(
    "a client of a killed worker recovers its session elsewhere and gets the broadcast it missed exactly once",
    { timeout: TEST_TIMEOUT_MS },
    async () => {
      // socket.io-client's defaults: polling then websocket, reconnection on.
      const client = await pool.open({ reconnection: true });
      assert.equal(typeof client.offset, "string", "welcome carries an offset");
      const id = client.socket.id;
      await client.ack("join", "r");
      let other = await pool.open({ transports: ["websocket"] });
      for (let tries = 0; other.worker === client.worker && tries < 3; tries++) {
        other = await pool.open({ transports: ["websocket"] });
      }
      assert.notEqual(other.worker, client.worker);

      const killed = client.worker;
      const disconnected = waitFor(client.socket, "disconnect", 5_000);
      const reconnected = waitFor(client.socket, "connect", 15_000);
      reconnected.catch(() => {}); // awaited below, unless a step before fails
      await cluster.signalWorker(killed);
      assert.match(await disconnected, /^transport (close|error)$/);
      // The reconnection delay is at least 500 ms (1 s ± 50 %): this ack
      // comes back long before.
      await other.ack("to-room", "r", "missed");
      assert.equal(client.socket.connected, false, "sent while disconnected");
      await reconnected;

      assert.equal(client.socket.recovered, true);
      assert.equal(client.socket.id, id);
      await other.ack("marker", "after-recovery");
      await client.waitForMarker("after-recovery");
      assert.equal(client.count("room-message", (m) => m === "missed"), 1);
      // The connection handlers ran again, on a live worker.
      const welcomes = client.received.filter(([e]) => e === "welcome");
      assert.equal(welcomes.length, 2);
      assert.notEqual(welcomes[1][1].worker, killed);
    },
  );
});

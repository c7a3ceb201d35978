// Helpers of cluster-adapter.test.js (and of bench/fanout.mjs): open many
// Socket.IO clients with bounded concurrency, each logging what it receives
// so that a test can count deliveries per client and wait for a marker
// instead of sleeping. (The master with its worker program is started by
// processes.js's `startCluster`.)

import { io } from "socket.io-client";

import { waitFor, withTimeout } from "./support.js";

/** Connecting one client and getting its `welcome`. */
const WELCOME_TIMEOUT_MS = 10_000;
/** An ack from the worker program. */
export const ACK_TIMEOUT_MS = 10_000;

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

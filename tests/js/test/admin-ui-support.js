// What the Admin UI tests share: the test credentials, and a socket.io-client
// that logs in to /admin as the UI does (App.vue's tryConnect) and records
// what the servers tell it.

import { io } from "socket.io-client";

import { waitFor, withTimeout } from "./support.js";

/** The Admin UI login of the tests. */
export const USERNAME = "admin";
export const PASSWORD = "iocluster-test";
/** bcrypt of PASSWORD (`htpasswd -nbBC 4 "" iocluster-test | cut -c2-`): cost 4 keeps debug builds quick; `$2y$` as htpasswd writes them. */
export const PASSWORD_HASH = "$2y$04$lWnaJ82.71WKIu9j1ttb0uHNIpcnhRVHZwOVpiBCqxNzCn.aaysDy";

/** The flags and environment that turn the Admin UI on with that login. */
export function adminUiOptions(extraArgs = []) {
  return {
    args: ["--admin-ui", "--admin-ui-username", USERNAME, ...extraArgs],
    env: { IOCLUSTER_ADMIN_UI_PASSWORD_HASH: PASSWORD_HASH },
  };
}

export const EVENT_TIMEOUT_MS = 10_000;

/**
 * A connection to /admin as the UI makes it, recording every event:
 * `events` lists `[name, ...args]` in arrival order, `waitUntil` resolves
 * once a recorded event satisfies a predicate.
 */
export class AdminClient {
  constructor(url, auth, { transports = ["polling", "websocket"] } = {}) {
    this.events = [];
    this.waiters = [];
    this.socket = io(`${url}/admin`, {
      forceNew: true,
      reconnection: false,
      transports,
      auth,
    });
    this.socket.onAny((...event) => {
      this.events.push(event);
      this.waiters = this.waiters.filter(({ test, resolve }) => {
        if (!test(event)) return true;
        resolve(event);
        return false;
      });
    });
  }

  /** Resolves on connect; rejects with the connect_error. */
  connected() {
    return waitFor(this.socket, "connect", EVENT_TIMEOUT_MS, { failOn: ["connect_error"] });
  }

  /** Resolves with the connect_error's message. */
  async refused() {
    const error = await waitFor(this.socket, "connect_error", EVENT_TIMEOUT_MS, {
      failOn: ["connect"],
    });
    return error.message;
  }

  /** Resolves with the first event (recorded or to come) `test` accepts. */
  waitUntil(test, what) {
    const seen = this.events.find(test);
    if (seen) return Promise.resolve(seen);
    const promise = new Promise((resolve) => this.waiters.push({ test, resolve }));
    return withTimeout(promise, EVENT_TIMEOUT_MS, what);
  }

  /** Resolves with the first `name` event whose arguments `test` accepts. */
  waitFor(name, test = () => true) {
    return this.waitUntil(([event, ...args]) => event === name && test(...args), `"${name}"`);
  }

  /** Resolves with the `server_stats` of `count` distinct servers. */
  async serverStats(count) {
    const servers = new Map();
    await this.waitUntil(([event, stats]) => {
      if (event === "server_stats") servers.set(stats.serverId, stats);
      return servers.size >= count;
    }, `server_stats of ${count} servers`);
    // Those recorded before the wait too.
    for (const [event, stats] of this.events) {
      if (event === "server_stats") servers.set(stats.serverId, stats);
    }
    return servers;
  }

  close() {
    this.socket.disconnect();
  }
}

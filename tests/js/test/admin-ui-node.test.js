// A mixed fleet on one redis-server of the test: an iocluster node
// (`--redis --admin-ui`, two workers) and a Node socket.io server
// instrumented by the real @socket.io/admin-ui (tests/js/redis/
// admin-ui-peer.js). The Admin UI protocol crosses both ways: a UI
// logged in to either sees the other's `server_stats` and sockets (with
// the client id and transport each side keeps in `socket.data._admin`), and
// its `_disconnect` reaches a client of the other.

import assert from "node:assert/strict";
import path from "node:path";
import { after, before, describe, test } from "node:test";

import { io } from "socket.io-client";

import {
  AdminClient,
  EVENT_TIMEOUT_MS,
  PASSWORD,
  PASSWORD_HASH,
  USERNAME,
  adminUiOptions,
} from "./admin-ui-support.js";
import { REPO_ROOT, startCluster, startProcess, startRedis, stdoutMatches } from "./processes.js";
import { waitFor } from "./support.js";

const LOGIN = { username: USERNAME, password: PASSWORD };
const PEER = path.join(REPO_ROOT, "tests/js/redis/admin-ui-peer.js");

describe("the Admin UI across iocluster and a Node server on one Redis", () => {
  let redis;
  let cluster;
  let nodePeer;
  const opened = [];

  before(async () => {
    redis = await startRedis();
    const options = adminUiOptions(["--redis", redis.redisUrl]);
    [cluster, nodePeer] = await Promise.all([
      startCluster({ workers: 2, ...options }),
      startProcess(
        "node admin-ui peer",
        process.execPath,
        [PEER, String(new URL(redis.redisUrl).port), USERNAME, PASSWORD_HASH],
        {
          ready: async (running) => {
            const [line] = await stdoutMatches(running, [/\{"ready":\{"port":(\d+)\}\}/]);
            running.url = `http://127.0.0.1:${line[1]}`;
          },
        },
      ),
    ]);
  });

  after(async () => {
    for (const socket of opened) socket.close();
    await Promise.allSettled([cluster?.stop(), nodePeer?.stop()]);
    await redis?.stop();
  });

  async function appClient(url) {
    const socket = io(url, { forceNew: true, reconnection: false });
    opened.push(socket);
    const welcome = await waitFor(socket, "welcome", EVENT_TIMEOUT_MS, {
      failOn: ["connect_error"],
    });
    return { socket, id: welcome.id };
  }

  function admin(url) {
    const client = new AdminClient(url, LOGIN);
    opened.push(client);
    return client;
  }

  for (const side of ["iocluster", "Node"]) {
    test(`a UI logged in to ${side} sees and acts on the other's sockets`, async () => {
      const [here, there] =
        side === "iocluster" ? [cluster.url, nodePeer.url] : [nodePeer.url, cluster.url];
      const remote = await appClient(there);
      const ui = admin(here);
      await ui.connected();

      // Three servers: two iocluster workers and the Node server.
      const servers = await ui.serverStats(3);
      const ids = [...servers.keys()];
      assert.equal(ids.filter((id) => /\/node-\d+\/worker-\d+$/.test(id)).length, 2);
      assert.equal(ids.filter((id) => id.startsWith("node-peer-")).length, 1);

      const [, sockets] = await ui.waitFor("all_sockets");
      const seen = sockets.find((s) => s.id === remote.id);
      assert.ok(seen, `the other side's socket is missing: ${JSON.stringify(sockets)}`);
      assert.equal(seen.nsp, "/");
      assert.equal(typeof seen.clientId, "string");
      assert.ok(["polling", "websocket"].includes(seen.transport));

      // A new client of the other side is reported live.
      const late = await appClient(there);
      await ui.waitFor("socket_connected", (s) => s.id === late.id);

      const gone = waitFor(remote.socket, "disconnect", EVENT_TIMEOUT_MS);
      ui.socket.emit("_disconnect", "/", false, remote.id);
      assert.equal(await gone, "io server disconnect");
      await ui.waitFor("socket_disconnected", (nsp, id) => id === remote.id);
      ui.close();
    });
  }
});

// Helpers for end-to-end tests with a load balancer and a browser: an
// HAProxy of the test's own on free loopback ports (started and stopped by
// processes.js), HAProxy's per-server request counters, and a static HTTP
// server for test pages.

import { readFile } from "node:fs/promises";
import http from "node:http";
import path from "node:path";

import { clusterBinary, freePort, listenOnLoopback, startProcess } from "./processes.js";
import { withTimeout } from "./support.js";

/** How long the static server may take to close. */
const START_TIMEOUT_MS = 10_000;
/** How often HAProxy's stats are re-read while waiting for its servers. */
const STATS_POLL_MS = 20;
/** How long one stats request may take. */
const STATS_TIMEOUT_MS = 2_000;

/**
 * The cargo target dir (the parent of the debug dir holding the iocluster
 * binary): where tests keep artifacts such as screenshots.
 */
export function cargoTargetDir() {
  return path.dirname(path.dirname(clusterBinary()));
}

/** HAProxy with its `stats()` reader; `url` is where clients connect. */
export class RunningHaproxy {
  constructor(running, statsPort) {
    this.process = running;
    this.pid = running.pid;
    this.port = running.port;
    this.url = `http://127.0.0.1:${running.port}`;
    this.statsUrl = `http://127.0.0.1:${statsPort}/stats;csv`;
  }

  /**
   * The backend `backend`'s servers from the stats CSV:
   * `{ name: { status, check, requests } }` (`requests`: HTTP requests
   * the server got, health checks not counted).
   */
  async servers(backend = "nodes") {
    const csv = await getText(this.statsUrl);
    const [header, ...rows] = csv.trim().split("\n");
    const columns = header.replace(/^# /, "").split(",");
    const at = (name) => columns.indexOf(name);
    const servers = {};
    for (const row of rows) {
      const fields = row.split(",");
      const server = fields[at("svname")];
      if (fields[at("pxname")] !== backend) continue;
      if (server === "BACKEND" || server === "FRONTEND") continue;
      servers[server] = {
        status: fields[at("status")],
        check: fields[at("check_status")],
        requests: Number(fields[at("req_tot")]),
      };
    }
    return servers;
  }

  /** Requests per server since `before` (an earlier `servers()`). */
  async requestsSince(before, backend = "nodes") {
    const now = await this.servers(backend);
    const delta = {};
    for (const [name, server] of Object.entries(now)) {
      delta[name] = server.requests - (before[name]?.requests ?? 0);
    }
    return delta;
  }

  stop() {
    return this.process.stop();
  }
}

/**
 * Starts `haproxy -db -f <config>` with `env` plus IOC_LB_PORT and
 * IOC_STATS_PORT (free loopback ports), and resolves once every server of
 * its `nodes` backend passed its health check.
 */
export async function startHaproxy(config, env) {
  const port = await freePort();
  const statsPort = await freePort();
  const running = await startProcess("haproxy", "haproxy", ["-db", "-f", config], {
    env: { ...env, IOC_LB_PORT: String(port), IOC_STATS_PORT: String(statsPort) },
    port,
    ready: async (started) => {
      const haproxy = new RunningHaproxy(started, statsPort);
      // No event says "all servers are up": re-read the stats.
      for (;;) {
        const servers = await haproxy.servers().catch(() => ({}));
        const all = Object.values(servers);
        if (all.length > 0 && all.every((s) => s.status === "UP" && s.check === "L7OK")) {
          return;
        }
        await new Promise((r) => setTimeout(r, STATS_POLL_MS));
      }
    },
  });
  return new RunningHaproxy(running, statsPort);
}

/** `GET url`'s body; rejects on a non-200 status or after a timeout. */
function getText(url) {
  const request = new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk) => (body += chunk));
      res.on("end", () =>
        res.statusCode === 200
          ? resolve(body)
          : reject(new Error(`GET ${url}: HTTP ${res.statusCode}`)),
      );
    });
    req.on("error", reject);
  });
  return withTimeout(request, STATS_TIMEOUT_MS, `GET ${url}`);
}

/**
 * A static HTTP server on a free loopback port serving `files`
 * (`{ "/path": [file, content type] }`); 404 for anything else. Resolves
 * with `{ origin, close() }`.
 */
export async function startStaticServer(files) {
  const server = http.createServer(async (req, res) => {
    const pathname = new URL(req.url, "http://x").pathname;
    const file = files[pathname];
    if (!file) {
      res.writeHead(404).end();
      return;
    }
    try {
      const body = await readFile(file[0]);
      res.writeHead(200, { "Content-Type": file[1], "Cache-Control": "no-store" });
      res.end(body);
    } catch (error) {
      res.writeHead(500).end(String(error));
    }
  });
  const port = await listenOnLoopback(server, "the static server to listen");
  return {
    origin: `http://127.0.0.1:${port}`,
    close: () =>
      withTimeout(
        new Promise((resolve) => {
          server.close(resolve);
          server.closeAllConnections();
        }),
        START_TIMEOUT_MS,
        "the static server to close",
      ),
  };
}

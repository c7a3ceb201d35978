// Helpers for the cluster end-to-end tests: start the iocluster binary (a
// master and its worker processes) on a free port, learn its addresses from
// the lines it prints, wait until every worker is ready, stop it by PID.
//
// The binary is `<target>/debug/iocluster`: `IOCLUSTER_TARGET_DIR` when set
// (scripts/test.sh points it at the debug dir), else `CARGO_TARGET_DIR`'s
// `debug/`, else `<repo>/target/debug`. Relative dirs are resolved against
// the repo root.

import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import http from "node:http";
import path from "node:path";

import { REPO_ROOT, withTimeout } from "./support.js";

/** How long the master may take to print its addresses. */
const START_TIMEOUT_MS = 10_000;
/** How long the workers may take to be ready once the master listens. */
const READY_TIMEOUT_MS = 10_000;
/** How often /status is re-read while waiting for readiness. */
const READY_POLL_MS = 20;
/** How long one /status request may take. */
const STATUS_TIMEOUT_MS = 2_000;
/** How long the master may take to exit after SIGTERM before SIGKILL. */
const STOP_TIMEOUT_MS = 5_000;

/** The path of the iocluster binary. */
export function clusterBinary() {
  const debugDir = process.env.IOCLUSTER_TARGET_DIR
    ? path.resolve(REPO_ROOT, process.env.IOCLUSTER_TARGET_DIR)
    : path.join(
        path.resolve(REPO_ROOT, process.env.CARGO_TARGET_DIR || "target"),
        "debug",
      );
  return path.join(debugDir, "iocluster");
}

/** `GET url` and its body parsed as JSON; rejects on a non-200 status. */
function getJson(url) {
  const request = new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk) => (body += chunk));
      res.on("end", () => {
        if (res.statusCode !== 200) {
          reject(new Error(`GET ${url}: HTTP ${res.statusCode} ${body}`));
          return;
        }
        try {
          resolve(JSON.parse(body));
        } catch (error) {
          reject(error);
        }
      });
    });
    req.on("error", reject);
  });
  return withTimeout(request, STATUS_TIMEOUT_MS, `GET ${url}`);
}

/**
 * A running master: its Socket.IO `url`, its admin endpoint, its `pid`,
 * `status()` and `stop()`, which ends it by PID.
 */
export class RunningCluster {
  constructor(child) {
    this.child = child;
    this.pid = child.pid;
    this.url = undefined;
    this.adminUrl = undefined;
    this.output = "";
    this.exited = new Promise((resolve) => {
      child.once("exit", (code, signal) => resolve({ code, signal }));
    });
    const keep = (chunk) => {
      // The tail is enough for error messages.
      this.output = (this.output + chunk.toString()).slice(-8_192);
    };
    child.stdout.on("data", keep);
    child.stderr.on("data", keep);
  }

  /** The admin endpoint's `/status`. */
  status() {
    return getJson(`${this.adminUrl}/status`);
  }

  /** Ends the master by its PID (SIGTERM, then SIGKILL) and waits. */
  async stop() {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    signal(this.pid, "SIGTERM");
    try {
      await withTimeout(this.exited, STOP_TIMEOUT_MS, "the master to exit");
    } catch {
      signal(this.pid, "SIGKILL");
      await withTimeout(this.exited, STOP_TIMEOUT_MS, "the master to die");
    }
  }
}

function signal(pid, name) {
  try {
    process.kill(pid, name);
  } catch (error) {
    if (error.code !== "ESRCH") throw error; // already gone is fine
  }
}

/**
 * Starts `iocluster --port 0 --admin 127.0.0.1:0 --workers <workers>
 * --balance <balance> ...args` and resolves once every worker is ready.
 */
export async function startCluster({ balance, workers = 3, args = [] }) {
  const binary = clusterBinary();
  if (!existsSync(binary)) {
    throw new Error(
      `${binary} does not exist; build it with \`cargo build\` ` +
        "or point IOCLUSTER_TARGET_DIR at the debug target dir",
    );
  }
  const child = spawn(
    binary,
    [
      "--port",
      "0",
      "--admin",
      "127.0.0.1:0",
      "--workers",
      String(workers),
      "--balance",
      balance,
      ...args,
    ],
    {
      cwd: REPO_ROOT,
      env: { ...process.env, RUST_LOG: "warn" },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  const cluster = new RunningCluster(child);
  try {
    await withTimeout(
      addresses(cluster),
      START_TIMEOUT_MS,
      "the master's addresses",
    );
    await withTimeout(
      allReady(cluster, workers),
      READY_TIMEOUT_MS,
      `${workers} ready workers`,
    );
  } catch (error) {
    await cluster.stop();
    error.message += `\n${cluster.output}`;
    throw error;
  }
  return cluster;
}

/** Resolves once the master printed where it listens and its admin address. */
function addresses(cluster) {
  return new Promise((resolve, reject) => {
    let stdout = "";
    const onData = (chunk) => {
      stdout += chunk.toString();
      const listening = stdout.match(/iocluster listening on (http:\/\/\S+)/);
      const admin = stdout.match(/iocluster admin on (http:\/\/\S+)\/status/);
      if (listening && admin) {
        cluster.url = listening[1];
        cluster.adminUrl = admin[1];
        cluster.child.stdout.off("data", onData);
        resolve();
      }
    };
    cluster.child.stdout.on("data", onData);
    cluster.child.once("error", reject);
    cluster.exited.then(({ code, signal: sig }) =>
      reject(new Error(`iocluster exited (code ${code}, signal ${sig})`)),
    );
  });
}

/** Re-reads /status until `workers` workers are ready and none drains. */
async function allReady(cluster, workers) {
  for (;;) {
    const status = await cluster.status();
    const ready = status.workers.filter((w) => w.ready && !w.draining);
    if (status.workers.length === workers && ready.length === workers) return;
    await new Promise((r) => setTimeout(r, READY_POLL_MS));
  }
}

// The processes of the Node end-to-end tests, in one place: start the
// binaries (an example, the iocluster master, redis-server, HAProxy, ...)
// tied to this process, wait until they are ready, stop them by PID; free
// ports.
//
// Every child is spawned through `setpriv --pdeathsig KILL` (util-linux),
// so the kernel kills it if this test process dies without stopping it (a
// crash, SIGKILL, a runner timeout); `stop()` ends it by its PID otherwise.
// (The parent-death signal follows the thread that spawned the child: here
// Node's main thread, which lives as long as the test file's process.)
//
// The binaries come from the debug target dir: `IOCLUSTER_TARGET_DIR` when
// set (scripts/test.sh sets it), else `$CARGO_TARGET_DIR/debug`, else
// `<repo>/target/debug`; a profile other than debug is looked for in
// `$CARGO_TARGET_DIR/<profile>` or `<repo>/target/<profile>`. Relative dirs
// are resolved against the repo root.

import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";

import { withTimeout } from "./support.js";

/** The repository root (tests/js/test/ is three levels down). */
export const REPO_ROOT = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  "../../..",
);

/** How long a process may take to be ready (listening, every worker up). */
const START_TIMEOUT_MS = 15_000;
/** How long a process may take to exit after SIGTERM before it gets SIGKILL. */
const STOP_TIMEOUT_MS = 10_000;
/** How often a readiness probe (TCP connect, /status) is repeated. */
const PROBE_INTERVAL_MS = 50;
/** How long one /status request may take. */
const STATUS_TIMEOUT_MS = 2_000;
/** util-linux's setpriv, which sets the parent-death signal and execs. */
const SETPRIV = "/usr/bin/setpriv";

/** The dir holding `iocluster` and `examples/` for cargo profile `profile`. */
export function binaryDir(profile = "debug") {
  if (profile === "debug" && process.env.IOCLUSTER_TARGET_DIR) {
    return path.resolve(REPO_ROOT, process.env.IOCLUSTER_TARGET_DIR);
  }
  const target = path.resolve(REPO_ROOT, process.env.CARGO_TARGET_DIR || "target");
  return path.join(target, profile);
}

/** The path of the iocluster binary of `profile`. */
export function clusterBinary(profile = "debug") {
  return path.join(binaryDir(profile), "iocluster");
}

/** The path of the example binary `name` of `profile`. */
export function examplePath(name, profile = "debug") {
  return path.join(binaryDir(profile), "examples", name);
}

/** Throws, saying how to build it, unless `binary` exists. */
function assertBuilt(binary, profile = "debug") {
  if (existsSync(binary)) return;
  const flag = profile === "release" ? " --release" : "";
  throw new Error(
    `${binary} does not exist; build it with \`cargo build${flag} --examples --bins\` ` +
      "or point IOCLUSTER_TARGET_DIR at the debug target dir",
  );
}

/**
 * Makes `server` (a net or http server) listen on a port of 127.0.0.1 the
 * system picks; resolves with the port.
 */
export async function listenOnLoopback(server, what) {
  await withTimeout(
    new Promise((resolve, reject) => {
      server.once("error", reject);
      server.listen(0, "127.0.0.1", resolve);
    }),
    START_TIMEOUT_MS,
    what,
  );
  return server.address().port;
}

/** A TCP port that was free a moment ago on 127.0.0.1. */
export async function freePort() {
  const server = net.createServer();
  const port = await listenOnLoopback(server, "a free port");
  await withTimeout(
    new Promise((resolve) => server.close(resolve)),
    START_TIMEOUT_MS,
    "the port probe to close",
  );
  return port;
}

/** Resolves true when a TCP connection to 127.0.0.1:`port` succeeds. */
function canConnect(port) {
  return new Promise((resolve) => {
    const socket = net.connect({ host: "127.0.0.1", port });
    socket.setTimeout(PROBE_INTERVAL_MS * 10);
    const done = (ok) => {
      socket.destroy();
      resolve(ok);
    };
    socket.once("connect", () => done(true));
    socket.once("error", () => done(false));
    socket.once("timeout", () => done(false));
  });
}

/** Sends `name` to process `pid`; a process already gone is fine. */
export function sendSignal(pid, name) {
  try {
    process.kill(pid, name);
  } catch (error) {
    if (error.code !== "ESRCH") throw error;
  }
}

/**
 * Spawns `command args` with stdout and stderr piped (stdin closed unless
 * `stdin` is "pipe"), tied to this process by a parent-death signal
 * (through setpriv, which execs the command: the child's PID is the
 * command's).
 */
export function spawnTied(command, args, { stdin = "ignore", ...options } = {}) {
  const stdio = [stdin, "pipe", "pipe"];
  if (!existsSync(SETPRIV)) return spawn(command, args, { stdio, ...options });
  return spawn(SETPRIV, ["--pdeathsig", "KILL", "--", command, ...args], {
    stdio,
    ...options,
  });
}

/**
 * A running child: its `name`, `pid`, `port` (when it has one), the tail of
 * its `output`, `exited` (resolves with `{ code, signal }`), and `stop()`,
 * which ends it by its PID (SIGTERM, then SIGKILL after a timeout).
 */
export class RunningProcess {
  constructor(name, child, port) {
    this.name = name;
    this.child = child;
    this.pid = child.pid;
    this.port = port;
    /** `http://127.0.0.1:<port>` (a master sets its own once it listens). */
    this.url = port === undefined ? undefined : `http://127.0.0.1:${port}`;
    this.output = "";
    this.exited = new Promise((resolve) => {
      child.once("exit", (code, signal) => resolve({ code, signal }));
    });
    const keep = (chunk) => {
      // Keep the tail for error messages; the binaries can be chatty.
      this.output = (this.output + chunk.toString()).slice(-8_192);
    };
    child.stdout.on("data", keep);
    child.stderr.on("data", keep);
  }

  /** Ends the process by its PID and waits until it has exited. */
  async stop() {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    sendSignal(this.pid, "SIGTERM");
    try {
      await withTimeout(this.exited, STOP_TIMEOUT_MS, `${this.name} to exit`);
    } catch {
      sendSignal(this.pid, "SIGKILL");
      await withTimeout(this.exited, STOP_TIMEOUT_MS, `${this.name} to die`);
    }
  }
}

/**
 * Spawns `command args` (with `env` over this process's environment, a pipe
 * to its stdin if `stdin` is "pipe") as a `Running` (a RunningProcess or a
 * subclass) and resolves with it once `ready(running)` has resolved; stops
 * it and rejects if it exits first or `ready` takes longer than
 * `timeoutMs`.
 */
export async function startProcess(
  name,
  command,
  args,
  {
    env = {},
    port,
    ready,
    stdin,
    timeoutMs = START_TIMEOUT_MS,
    Running = RunningProcess,
  } = {},
) {
  const child = spawnTied(command, args, {
    cwd: REPO_ROOT,
    env: { ...process.env, ...env },
    stdin,
  });
  const running = new Running(name, child, port);
  const failed = new Promise((_, reject) => {
    child.once("error", reject);
    running.exited.then(({ code, signal }) =>
      reject(
        new Error(
          `${name} exited (code ${code}, signal ${signal}) before it was ready:\n` +
            running.output,
        ),
      ),
    );
  });
  failed.catch(() => {}); // it exits when the test stops it
  try {
    await withTimeout(Promise.race([ready(running), failed]), timeoutMs, `${name} to be ready`);
  } catch (error) {
    await running.stop();
    error.message += `\n${running.output}`;
    throw error;
  }
  return running;
}

/**
 * Resolves, once each of `patterns` has matched `running`'s stdout so far,
 * with their matches in order.
 */
export function stdoutMatches(running, patterns) {
  return new Promise((resolve) => {
    let stdout = "";
    const onData = (chunk) => {
      stdout += chunk.toString();
      const matches = patterns.map((pattern) => stdout.match(pattern));
      if (matches.every(Boolean)) {
        running.child.stdout.off("data", onData);
        resolve(matches);
      }
    };
    running.child.stdout.on("data", onData);
  });
}

/**
 * Starts the example binary `name` with `PORT=<free port>` plus `env`, and
 * resolves once it prints its "listening" line or accepts a TCP connection.
 */
export async function startExample(name, { env = {}, timeoutMs } = {}) {
  const binary = examplePath(name);
  assertBuilt(binary);
  const port = await freePort();
  let probing = true;
  const ready = (running) =>
    Promise.race([
      stdoutMatches(running, [/listening/i]),
      // Fallback for binaries that print nothing: probe the port.
      (async () => {
        while (probing) {
          if (await canConnect(port)) return;
          await new Promise((r) => setTimeout(r, PROBE_INTERVAL_MS));
        }
      })(),
    ]).finally(() => {
      probing = false;
    });
  return startProcess(name, binary, [], {
    env: { ...env, PORT: String(port) },
    port,
    ready,
    timeoutMs,
  });
}

/**
 * Starts `redis-server` on a free loopback port, saving nothing; resolves
 * once it accepts connections. `redisUrl` is `redis://127.0.0.1:<port>`.
 */
export async function startRedis() {
  const port = await freePort();
  const redis = await startProcess(
    "redis-server",
    "redis-server",
    ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
    { port, ready: (running) => stdoutMatches(running, [/Ready to accept connections/]) },
  );
  redis.redisUrl = `redis://127.0.0.1:${port}`;
  return redis;
}

/**
 * A running iocluster master: its Socket.IO `url` and `adminUrl`, `pid`,
 * its workers' state from the admin endpoint, `stop()` by its PID.
 */
export class RunningCluster extends RunningProcess {
  /** The admin endpoint's `/status` JSON. */
  async status() {
    const response = await fetch(`${this.adminUrl}/status`, {
      signal: AbortSignal.timeout(STATUS_TIMEOUT_MS),
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
      await new Promise((resolve) => setTimeout(resolve, PROBE_INTERVAL_MS));
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
}

/**
 * Starts `iocluster --port 0 --admin 127.0.0.1:0 --workers <workers>
 * --balance <balance> ...args`, with `-- <worker example>` when `worker`
 * names one, and resolves once it listens and every worker is ready.
 * Workers inherit the master's stderr: logs are kept to warnings unless
 * `env` sets RUST_LOG.
 */
export async function startCluster({
  workers = 3,
  balance = "round-robin",
  args = [],
  worker,
  profile = "debug",
  env = {},
} = {}) {
  const master = clusterBinary(profile);
  const program = worker === undefined ? undefined : examplePath(worker, profile);
  for (const binary of [master, program].filter(Boolean)) assertBuilt(binary, profile);
  const all = ["--port", "0", "--admin", "127.0.0.1:0"];
  all.push("--workers", String(workers), "--balance", balance, ...args);
  if (program) all.push("--", program);
  return startProcess("iocluster", master, all, {
    env: { RUST_LOG: "warn", ...env },
    timeoutMs: 2 * START_TIMEOUT_MS,
    Running: RunningCluster,
    ready: async (cluster) => {
      const [listening, admin] = await stdoutMatches(cluster, [
        /iocluster listening on (https?:\/\/\S+)/,
        /iocluster admin on (http:\/\/\S+)\/status/,
      ]);
      cluster.url = listening[1];
      cluster.adminUrl = admin[1];
      await cluster.waitForStatus(({ workers: now }) => {
        const ready = now.filter((w) => w.ready && !w.draining);
        return now.length === workers && ready.length === workers;
      }, `${workers} ready workers`);
    },
  });
}

// Helpers shared by the end-to-end tests: start a Rust example binary on a
// free port, wait until it listens, stop it; await events with a timeout;
// turn received binaries into Buffers.
//
// The binaries come from the debug target dir: `IOCLUSTER_TARGET_DIR` when
// set (scripts/test.sh sets it), else `<repo>/target/debug`. A relative
// `IOCLUSTER_TARGET_DIR` is resolved against the repo root.

import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";

/** The repository root (tests/js/test/ is three levels down). */
export const REPO_ROOT = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  "../../..",
);

/** How long a binary may take to start listening. */
const START_TIMEOUT_MS = 10_000;
/** How long a binary may take to exit after SIGTERM before it gets SIGKILL. */
const STOP_TIMEOUT_MS = 5_000;
/** How often the TCP fallback probe retries while waiting for readiness. */
const PROBE_INTERVAL_MS = 50;

/** The debug target dir holding `examples/` and the binaries. */
export function targetDir() {
  const dir = process.env.IOCLUSTER_TARGET_DIR;
  if (dir) return path.resolve(REPO_ROOT, dir);
  return path.resolve(REPO_ROOT, "target/debug");
}

/** The path of the example binary `name`. */
export function examplePath(name) {
  return path.join(targetDir(), "examples", name);
}

/**
 * Resolves with `promise`'s value, or rejects after `ms` with an error that
 * names `what`.
 */
export function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)),
      ms,
    );
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Waits for `event` on `emitter` (a Node EventEmitter or the
 * component-emitter the Engine.IO client uses) and resolves with its first
 * argument. Rejects after `ms`, or as soon as one of `failOn` fires.
 */
export function waitFor(emitter, event, ms, { failOn = [] } = {}) {
  let cleanup = () => {};
  const settled = new Promise((resolve, reject) => {
    const onEvent = (value) => resolve(value);
    const failures = failOn.map((name) => {
      const onFail = (reason) =>
        reject(
          new Error(
            `"${name}" while waiting for "${event}": ${describe(reason)}`,
          ),
        );
      return [name, onFail];
    });
    emitter.on(event, onEvent);
    for (const [name, onFail] of failures) emitter.on(name, onFail);
    cleanup = () => {
      emitter.off(event, onEvent);
      for (const [name, onFail] of failures) emitter.off(name, onFail);
    };
  });
  return withTimeout(settled, ms, `"${event}"`).finally(() => cleanup());
}

function describe(reason) {
  if (reason instanceof Error) return reason.message;
  if (reason === undefined) return "no reason";
  return typeof reason === "string" ? reason : JSON.stringify(reason);
}

/**
 * `data` as a Buffer, whatever binary type a transport delivered (Buffer,
 * ArrayBuffer or a typed-array view); throws on anything else.
 */
export function toBuffer(data) {
  if (Buffer.isBuffer(data)) return data;
  if (data instanceof ArrayBuffer) return Buffer.from(data);
  if (ArrayBuffer.isView(data)) {
    return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  }
  throw new TypeError(`not binary: ${typeof data} ${String(data)}`);
}

/** A TCP port that was free a moment ago on 127.0.0.1. */
export async function freePort() {
  const server = net.createServer();
  await withTimeout(
    new Promise((resolve, reject) => {
      server.once("error", reject);
      server.listen(0, "127.0.0.1", resolve);
    }),
    START_TIMEOUT_MS,
    "a free port",
  );
  const { port } = server.address();
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

/**
 * A running example binary: its `port`, its `pid`, and `stop()`, which ends
 * it by PID (SIGTERM, then SIGKILL after a timeout).
 */
export class RunningBinary {
  constructor(name, child, port) {
    this.name = name;
    this.child = child;
    this.pid = child.pid;
    this.port = port;
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

  /** `http://127.0.0.1:<port>`. */
  get url() {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Ends the process by its PID and waits until it has exited. */
  async stop() {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    signal(this.pid, "SIGTERM");
    try {
      await withTimeout(this.exited, STOP_TIMEOUT_MS, `${this.name} to exit`);
    } catch {
      signal(this.pid, "SIGKILL");
      await withTimeout(this.exited, STOP_TIMEOUT_MS, `${this.name} to die`);
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
 * Starts the example binary `name` with `PORT=<free port>` plus `env`, and
 * resolves once it prints its "listening" line or accepts a TCP connection.
 * Rejects if it exits first or does not get ready within `timeoutMs`.
 */
export async function startExample(
  name,
  { env = {}, timeoutMs = START_TIMEOUT_MS } = {},
) {
  const binary = examplePath(name);
  if (!existsSync(binary)) {
    throw new Error(
      `${binary} does not exist; build it with \`cargo build --examples\` ` +
        "or point IOCLUSTER_TARGET_DIR at the debug target dir",
    );
  }
  const port = await freePort();
  const child = spawn(binary, [], {
    cwd: REPO_ROOT,
    env: { ...process.env, ...env, PORT: String(port) },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const running = new RunningBinary(name, child, port);

  let stopProbing = false;
  const ready = new Promise((resolve, reject) => {
    let stdout = "";
    child.stdout.on("data", (chunk) => {
      stdout += chunk.toString();
      if (/listening/i.test(stdout)) resolve();
    });
    child.once("error", reject);
    running.exited.then(({ code, signal: sig }) =>
      reject(
        new Error(
          `${name} exited (code ${code}, signal ${sig}) before listening:\n` +
            running.output,
        ),
      ),
    );
    // Fallback for binaries that print nothing: probe the port.
    (async () => {
      while (!stopProbing) {
        if (await canConnect(port)) return resolve();
        await new Promise((r) => setTimeout(r, PROBE_INTERVAL_MS));
      }
    })();
  });

  try {
    await withTimeout(ready, timeoutMs, `${name} to listen on port ${port}`);
  } catch (error) {
    await running.stop();
    throw error;
  } finally {
    stopProbing = true;
  }
  return running;
}

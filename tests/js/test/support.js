// What the Node end-to-end tests share besides their processes (those are
// in processes.js): await events with a timeout; turn received binaries into
// Buffers.

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

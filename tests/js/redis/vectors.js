// Prints the byte vectors the Rust msgpack codec and message builders are
// checked against (crates/redis/tests/vectors/notepack.json), produced by
// the real notepack.io, @socket.io/redis-emitter and @socket.io/redis-adapter.
//
//     node vectors.js > ../../../crates/redis/tests/vectors/notepack.json
//
// Binary values are written as Socket.IO placeholders
// ({"_placeholder":true,"num":N}) plus hex attachments, as iocluster's
// Payload holds them.
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const notepack = require("notepack.io");
const { Emitter } = require("@socket.io/redis-emitter");
const { createAdapter } = require("@socket.io/redis-adapter");
const { Server } = require("socket.io");

/** Replaces placeholders by Buffers. */
function withBuffers(value, attachments) {
  if (Array.isArray(value)) return value.map((v) => withBuffers(v, attachments));
  if (value && typeof value === "object") {
    if (value._placeholder === true && typeof value.num === "number") {
      return Buffer.from(attachments[value.num], "hex");
    }
    const out = {};
    for (const [k, v] of Object.entries(value)) out[k] = withBuffers(v, attachments);
    return out;
  }
  return value;
}

/** Replaces Buffers and ArrayBuffers by placeholders, as JSON would see the rest. */
function withPlaceholders(value, attachments) {
  if (Buffer.isBuffer(value) || value instanceof ArrayBuffer) {
    attachments.push(Buffer.from(value).toString("hex"));
    return { _placeholder: true, num: attachments.length - 1 };
  }
  if (value instanceof Date) return value.toJSON();
  if (Array.isArray(value)) return value.map((v) => (v === undefined ? null : withPlaceholders(v, attachments)));
  if (value && typeof value === "object") {
    const out = {};
    for (const [k, v] of Object.entries(value)) {
      if (v !== undefined) out[k] = withPlaceholders(v, attachments);
    }
    return out;
  }
  return value === undefined ? null : value;
}

/** Big outputs keep their first bytes and their length only. */
function hexOf(buffer) {
  if (buffer.length <= 600) return { hex: buffer.toString("hex") };
  return { prefix: buffer.subarray(0, 16).toString("hex"), length: buffer.length };
}

const repeat = (n) => "x".repeat(n);
const hexBytes = (n) => Buffer.alloc(n, 7).toString("hex");

// [name, JSON text (parsed by both sides), attachments]. Object keys are
// in sorted order: serde_json (without preserve_order) sorts them.
const encodeCases = [
  ["int 0", "0"], ["int 127", "127"], ["int 128", "128"], ["int 255", "255"],
  ["int 256", "256"], ["int 65535", "65535"], ["int 65536", "65536"],
  ["int 2^32-1", "4294967295"], ["int 2^32", "4294967296"],
  ["int 2^53-1", "9007199254740991"], ["int -1", "-1"], ["int -32", "-32"],
  ["int -33", "-33"], ["int -128", "-128"], ["int -129", "-129"],
  ["int -32768", "-32768"], ["int -32769", "-32769"],
  ["int -2^31", "-2147483648"], ["int -2^31-1", "-2147483649"],
  ["int -(2^53-1)", "-9007199254740991"],
  ["float 1.5", "1.5"], ["float -0.25", "-0.25"], ["float 1e300", "1e300"],
  ["float 0.1", "0.1"], ["integral float 2.0", "2.0"], ["negative zero", "-0.0"],
  ["integral float 1e15", "1e15"], ["float 2^64", "18446744073709551616"],
  ["null", "null"], ["true", "true"], ["false", "false"],
  ["empty string", '""'], ["string a", '"a"'],
  ["string 31", JSON.stringify(repeat(31))], ["string 32", JSON.stringify(repeat(32))],
  ["string 33", JSON.stringify(repeat(33))], ["string 255", JSON.stringify(repeat(255))],
  ["string 256", JSON.stringify(repeat(256))], ["string 65535", JSON.stringify(repeat(65535))],
  ["string 65536", JSON.stringify(repeat(65536))],
  ["string unicode", JSON.stringify("é€😀 ünïcödé")],
  ["empty array", "[]"], ["array 15", JSON.stringify(Array.from({ length: 15 }, (_, i) => i))],
  ["array 16", JSON.stringify(Array.from({ length: 16 }, (_, i) => i))],
  ["array 65536", JSON.stringify(Array.from({ length: 65536 }, () => 0))],
  ["empty map", "{}"],
  ["map 15", JSON.stringify(Object.fromEntries(Array.from({ length: 15 }, (_, i) => ["k" + String(i).padStart(2, "0"), i])))],
  ["map 16", JSON.stringify(Object.fromEntries(Array.from({ length: 16 }, (_, i) => ["k" + String(i).padStart(2, "0"), i])))],
  ["nested", '{"a":[1,{"b":null,"c":[true,false]}],"d":"e","f":-1.5}'],
  ["binary 0", '{"_placeholder":true,"num":0}', [""]],
  ["binary 3", '{"_placeholder":true,"num":0}', ["010203"]],
  ["binary 255", '{"_placeholder":true,"num":0}', [hexBytes(255)]],
  ["binary 256", '{"_placeholder":true,"num":0}', [hexBytes(256)]],
  ["binary 65536", '{"_placeholder":true,"num":0}', [hexBytes(65536)]],
  ["binaries nested", '["ev",{"a":{"_placeholder":true,"num":1}},{"_placeholder":true,"num":0}]', ["aa", "bbcc"]],
];

const encode = encodeCases.map(([name, json, attachments = []]) => {
  const value = withBuffers(JSON.parse(json), attachments);
  return { name, json, attachments, ...hexOf(notepack.encode(value)) };
});

// msgpack that Node may receive from other peers: what notepack decodes, as
// JSON plus attachments.
const decodeCases = [
  ["undefined in array", Buffer.from([0x92, 0x01, 0xd4, 0x00, 0x00])],
  ["undefined in map", Buffer.from([0x82, 0xa1, 0x61, 0xd4, 0x00, 0x00, 0xa1, 0x62, 0x02])],
  ["float32", Buffer.from([0xca, 0x3f, 0xc0, 0x00, 0x00])],
  ["float64 integral", Buffer.from([0xcb, 0x40, 0x00, 0, 0, 0, 0, 0, 0])],
  ["uint64", Buffer.from([0xcf, 0, 0, 0, 1, 0, 0, 0, 0])],
  ["int64", Buffer.from([0xd3, 0xff, 0xff, 0xff, 0xfe, 0, 0, 0, 0])],
  ["arraybuffer ext", Buffer.from([0xc7, 0x02, 0x00, 0x05, 0x06])],
  ["date legacy", notepack.encode(new Date(Date.UTC(2021, 0, 2, 3, 4, 5, 678))).length && Buffer.from([0xd7, 0x00, 0x00, 0x00, 0x01, 0x76, 0xc1, 0x81, 0xae, 0x86])],
  ["date timestamp32", notepack.encode(new Date(Date.UTC(2021, 0, 2, 3, 4, 5)))],
  ["date timestamp64", notepack.encode(new Date(Date.UTC(2021, 0, 2, 3, 4, 5, 678)))],
  ["date timestamp96", notepack.encode(new Date(Date.UTC(1969, 11, 31, 23, 59, 59, 500)))],
  ["typed array encodes as bin", notepack.encode(new Uint8Array([9, 8, 7]))],
  ["map with str8 key", Buffer.concat([Buffer.from([0x81, 0xd9, 0x20]), Buffer.from(repeat(32)), Buffer.from([0x01])])],
].map(([name, bytes]) => {
  const attachments = [];
  const json = JSON.stringify(withPlaceholders(notepack.decode(bytes), attachments));
  return { name, hex: bytes.toString("hex"), json, attachments };
});

// What @socket.io/redis-emitter publishes.
const published = [];
const fakeClient = {
  publish(channel, message) {
    published.push([channel, message]);
  },
};
const emitterCases = [
  ["emit", (e) => e.emit("hello", 1, "two", { three: [3] })],
  ["emit no args", (e) => e.emit("ping")],
  ["emit binary", (e) => e.emit("bin", Buffer.from([1, 2, 3]), { nested: Buffer.from([4]) })],
  ["to one room", (e) => e.to("room1").emit("hello", "world")],
  ["to two rooms except one", (e) => e.to("room1").to("room2").except("room3").emit("hello")],
  ["to one room except one", (e) => e.to("room1").except("room3").emit("hello")],
  ["except only", (e) => e.except(["a", "b"]).emit("hello")],
  ["volatile", (e) => e.volatile.emit("hello")],
  ["compress false", (e) => e.compress(false).emit("hello")],
  ["of namespace", (e) => e.of("/custom").to("r").emit("hello", 42)],
  ["of namespace without slash", (e) => e.of("custom").emit("hello")],
  ["sockets join", (e) => e.to("room1").except("room2").socketsJoin(["room3", "room4"])],
  ["sockets join one room", (e) => e.socketsJoin("room3")],
  ["sockets leave", (e) => e.in("room1").socketsLeave("room2")],
  ["disconnect sockets", (e) => e.to("room1").disconnectSockets()],
  ["disconnect sockets close", (e) => e.disconnectSockets(true)],
  ["server side emit", (e) => e.serverSideEmit("hello", "world", 1)],
];
const emitter = emitterCases.map(([name, run]) => {
  published.length = 0;
  run(new Emitter(fakeClient));
  return published.map(([channel, message]) => ({
    name,
    channel,
    ...(typeof message === "string" ? { text: message } : { hex: message.toString("hex") }),
  }))[0];
});

// What @socket.io/redis-adapter publishes for broadcasts, with its uid set
// to "abcdef".
const fakeSub = { on() {}, off() {}, psubscribe() {}, subscribe() {}, punsubscribe() {}, unsubscribe() {} };
const fakePub = {
  on() {},
  off() {},
  publish(channel, message) {
    published.push([channel, message]);
  },
};
const io = new Server({ adapter: createAdapter(fakePub, fakeSub) });
io.of("/").adapter.uid = "abcdef";
io.of("/admin").adapter.uid = "abcdef";
const adapterCases = [
  ["broadcast", () => io.emit("hello", 1, "two")],
  ["broadcast to one room", () => io.to("room1").emit("hello")],
  ["broadcast to one room except one", () => io.to("room1").except("room2").emit("hello")],
  ["broadcast to rooms except", () => io.to(["room1", "room2"]).except("room3").emit("hello", { a: 1 })],
  ["broadcast volatile binary", () => io.volatile.emit("bin", Buffer.from([1, 2, 3]))],
  ["broadcast in namespace", () => io.of("/admin").emit("hello")],
];
const adapter = adapterCases.map(([name, run]) => {
  published.length = 0;
  run();
  const [channel, message] = published[0];
  return { name, channel, hex: message.toString("hex") };
});
// The server never listened: exit once the vectors are written.
process.stdout.write(JSON.stringify({ encode, decode: decodeCases, emitter, adapter }, null, 1) + "\n", () => process.exit(0));

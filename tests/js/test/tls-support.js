// Certificates for the HTTPS tests, made with the openssl command line: a
// test CA (one day, P-256) and server certificates it signs for 127.0.0.1
// and localhost. Each test run makes its own in a temporary directory.

import { execFileSync } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

const P256 = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"];

function openssl(dir, args) {
  execFileSync("openssl", args, { cwd: dir, stdio: ["ignore", "ignore", "pipe"] });
}

/**
 * A test CA in a new temporary directory: `dir`, `caPem` (the CA's
 * certificate, for the clients' `ca`), and `issue(name)`, which writes
 * `<name>.crt` (the server certificate, then the CA's: a chain) and
 * `<name>.key` and returns `{ cert, key, fingerprint }` (paths, and the
 * server certificate's SHA-256 fingerprint).
 */
export function testCertificates() {
  const dir = mkdtempSync(path.join(tmpdir(), "iocluster-tls-"));
  openssl(dir, [
    "req", "-x509", "-nodes", "-days", "1", ...P256,
    "-keyout", "ca.key", "-out", "ca.crt",
    "-subj", "/CN=iocluster test CA",
    "-addext", "basicConstraints=critical,CA:TRUE",
    "-addext", "keyUsage=critical,keyCertSign",
  ]);
  writeFileSync(
    path.join(dir, "server.ext"),
    "subjectAltName=IP:127.0.0.1,DNS:localhost\n" +
      "extendedKeyUsage=serverAuth\n" +
      "basicConstraints=critical,CA:FALSE\n",
  );
  const caPem = readFileSync(path.join(dir, "ca.crt"), "utf8");
  const issue = (name) => {
    openssl(dir, [
      "req", "-nodes", ...P256,
      "-keyout", `${name}.key`, "-out", `${name}.csr`,
      "-subj", `/CN=${name}`,
    ]);
    openssl(dir, [
      "x509", "-req", "-in", `${name}.csr`,
      "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
      "-days", "1", "-out", `${name}.leaf.crt`, "-extfile", "server.ext",
    ]);
    const leaf = readFileSync(path.join(dir, `${name}.leaf.crt`), "utf8");
    writeFileSync(path.join(dir, `${name}.crt`), leaf + caPem);
    return {
      cert: path.join(dir, `${name}.crt`),
      key: path.join(dir, `${name}.key`),
      fingerprint: new X509Certificate(leaf).fingerprint256,
    };
  };
  return { dir, caPem, issue };
}

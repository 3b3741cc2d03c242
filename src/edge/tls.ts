// A self-signed certificate for the edge in embedded mode, made by the `openssl` CLI.
//
// Why the CLI: Node's crypto makes keys but cannot issue X.509 certificates, and the JS libraries
// that can either carry a whole JS crypto stack (node-forge) or add several packages for one call
// at start-up. `openssl` is the same OpenSSL Node links, ships with every Debian-based image, and
// the key never leaves a 0700 temporary directory that is removed at once.
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { isIP } from "node:net";

export interface CertificatePair {
  /** PEM */
  cert: string;
  /** PEM (PKCS#8), unencrypted */
  key: string;
}

export interface SelfSignedOptions {
  /** DNS names and IP addresses the certificate is for (subjectAltName). */
  hosts: readonly string[];
  days?: number;
  /** The CLI to run; `openssl` on PATH by default. */
  openssl?: string;
}

/** A fresh P-256 key and a self-signed certificate for `hosts`. */
export async function generateSelfSignedCertificate(options: SelfSignedOptions): Promise<CertificatePair> {
  const hosts = options.hosts.length > 0 ? options.hosts : ["localhost"];
  for (const host of hosts) {
    if (!/^[A-Za-z0-9.:*-]{1,253}$/.test(host)) throw new Error(`not a host name or address: ${JSON.stringify(host)}`);
  }
  const altNames = hosts.map((h) => (isIP(h) ? `IP:${h}` : `DNS:${h}`)).join(",");
  const dir = mkdtempSync(path.join(tmpdir(), "qod-cert-")); // 0700
  try {
    const keyFile = path.join(dir, "key.pem");
    const certFile = path.join(dir, "cert.pem");
    await run(options.openssl ?? "openssl", [
      "req", "-x509", "-nodes", "-sha256",
      "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
      "-days", String(options.days ?? 825),
      "-subj", `/CN=${hosts[0]}`,
      "-addext", `subjectAltName=${altNames}`,
      "-keyout", keyFile,
      "-out", certFile,
    ]);
    return { cert: readFileSync(certFile, "utf8"), key: readFileSync(keyFile, "utf8") };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function run(command: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { timeout: 30_000 }, (err, _stdout, stderr) => {
      if (err) reject(new Error(`${command} could not make a certificate: ${(err as NodeJS.ErrnoException).code === "ENOENT" ? "not installed" : stderr.trim()}`));
      else resolve();
    });
  });
}

// Outbound HTTP for OIDC discovery and JWKS, guarded against SSRF: only https, only hosts whose
// every address is public, no redirects, a size cap. The address check runs inside the
// connection's own DNS lookup, so a name cannot resolve to a public address for the check and
// to a private one for the connection. `allowInsecure` (QOD_OIDC_ALLOW_INSECURE) lifts the
// guard for tests that run an issuer on loopback.
import { lookup as dnsLookup, type LookupAddress } from "node:dns";
import http from "node:http";
import https from "node:https";
import { BlockList, isIP, type LookupFunction } from "node:net";

const MAX_RESPONSE_BYTES = 1024 * 1024;

/** Loopback, private, link-local, shared, multicast and reserved ranges (IPv4 rules also match IPv4-mapped IPv6). */
const NON_PUBLIC = new BlockList();
for (const [network, prefix] of [
  ["0.0.0.0", 8],
  ["10.0.0.0", 8],
  ["100.64.0.0", 10],
  ["127.0.0.0", 8],
  ["169.254.0.0", 16],
  ["172.16.0.0", 12],
  ["192.0.0.0", 24],
  ["192.168.0.0", 16],
  ["198.18.0.0", 15],
  ["224.0.0.0", 4],
  ["240.0.0.0", 4],
] as const) {
  NON_PUBLIC.addSubnet(network, prefix, "ipv4");
}
// IPv6 loopback and unspecified, unique-local, link-local, multicast, and the prefixes that
// embed an IPv4 address (NAT64, 6to4, Teredo), which could carry a private one.
for (const [network, prefix] of [
  ["::", 127],
  ["fc00::", 7],
  ["fe80::", 10],
  ["ff00::", 8],
  ["64:ff9b::", 96],
  ["2002::", 16],
  ["2001::", 32],
] as const) {
  NON_PUBLIC.addSubnet(network, prefix, "ipv6");
}

export function isPublicAddress(address: string): boolean {
  const family = isIP(address);
  return family !== 0 && !NON_PUBLIC.check(address, family === 4 ? "ipv4" : "ipv6");
}

/** Why an outbound fetch was refused; the message names no address. */
export class OutboundRefused extends Error {}

const publicOnlyLookup: LookupFunction = (hostname, options, callback) => {
  dnsLookup(hostname, { all: true, verbatim: true }, (err, addresses: LookupAddress[]) => {
    if (err) return callback(err, "", 0);
    if (addresses.length === 0 || !addresses.every((a) => isPublicAddress(a.address))) {
      return callback(new OutboundRefused("the host does not resolve to public addresses only"), "", 0);
    }
    if (options.all) return (callback as unknown as (e: null, a: LookupAddress[]) => void)(null, addresses);
    const [first] = addresses as [LookupAddress];
    return callback(null, first.address, first.family);
  });
};

export type GuardedFetch = (url: string, init?: { signal?: AbortSignal }) => Promise<Response>;

export function createGuardedFetch(options: { allowInsecure: boolean }): GuardedFetch {
  return (url, init = {}) =>
    new Promise<Response>((resolve, reject) => {
      const target = new URL(url);
      if (target.protocol !== "https:" && !(options.allowInsecure && target.protocol === "http:")) {
        throw new OutboundRefused("only https URLs are fetched");
      }
      // Connections to an IP literal skip the lookup, so literals are checked here.
      const literal = target.hostname.replace(/^\[(.*)\]$/, "$1");
      if (!options.allowInsecure && isIP(literal) !== 0 && !isPublicAddress(literal)) {
        throw new OutboundRefused("the host is not a public address");
      }
      const client = target.protocol === "https:" ? https : http;
      const request = client.request(
        target,
        {
          method: "GET",
          headers: { accept: "application/json" },
          ...(options.allowInsecure ? {} : { lookup: publicOnlyLookup }),
          ...(init.signal ? { signal: init.signal } : {}),
        },
        (response) => {
          const chunks: Buffer[] = [];
          let size = 0;
          response.on("data", (chunk: Buffer) => {
            size += chunk.length;
            if (size > MAX_RESPONSE_BYTES) response.destroy(new OutboundRefused("the response is too large"));
            else chunks.push(chunk);
          });
          response.on("error", reject);
          response.on("end", () => {
            try {
              const headers = { "content-type": response.headers["content-type"] ?? "" };
              resolve(new Response(Buffer.concat(chunks), { status: response.statusCode ?? 502, headers }));
            } catch (err) {
              reject(err);
            }
          });
        },
      );
      request.on("error", reject);
      request.end();
    });
}

// Who the client is, for per-source limits: one rule for both surfaces. The peer is the hop that
// opened the connection; `x-forwarded-for` names the hops before it, and is believed only as far
// as it was written by proxies this service trusts (QOD_TRUSTED_PROXIES): walking from the
// right, each trusted hop vouches for the address to its left, and the first untrusted one is
// the client. With no trusted proxies the header is never read, so a client cannot rotate it to
// pass for many. The embedded JSON gateway is itself a proxy: it appends the HTTP peer to the
// header and gives it as the call's peer, so a REST client is walked the same way.
import { BlockList, isIP } from "node:net";
import type { Cidr } from "../config";
import type { CallContext } from "./context";
import { metadataValue } from "./metadata";

export type ClientAddress = (ctx: Pick<CallContext, "peer" | "metadata">) => string;

/** An IPv4-mapped IPv6 address as the IPv4 address it is, so one client has one key. */
function canonical(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)?.[1];
  return mapped ?? address.toLowerCase();
}

/** grpc-js names a TCP peer `address:port` (IPv6 without brackets); this keeps the address. */
export function peerAddress(peer: string): string {
  const host = peer.replace(/:\d+$/, "").replace(/^\[(.*)\]$/, "$1");
  return isIP(host) ? canonical(host) : peer;
}

export function clientAddressRule(trustedProxies: readonly Cidr[]): ClientAddress {
  if (trustedProxies.length === 0) return (ctx) => peerAddress(ctx.peer);
  const trusted = new BlockList();
  for (const { address, prefix, family } of trustedProxies) trusted.addSubnet(address, prefix, family);
  const isTrusted = (address: string) => {
    const family = isIP(address);
    return family !== 0 && trusted.check(address, family === 4 ? "ipv4" : "ipv6");
  };
  return (ctx) => {
    let client = peerAddress(ctx.peer);
    if (!isTrusted(client)) return client;
    const hops = (metadataValue(ctx.metadata, "x-forwarded-for") ?? "").split(",").map((hop) => hop.trim());
    for (let i = hops.length - 1; i >= 0 && isTrusted(client); i--) {
      const hop = hops[i] ?? "";
      // A trusted proxy that wrote something other than an address: it is the client we know.
      if (isIP(hop) === 0) break;
      client = canonical(hop);
    }
    return client;
  };
}

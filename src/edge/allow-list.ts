// A tenant's allow list (CIDRs) as a node:net BlockList, built once per snapshot.
import { BlockList, isIP } from "node:net";

export interface AllowList {
  /** True when `address` (as a socket reports it) may connect. */
  allows(address: string): boolean;
  /** Entries that are not CIDRs: they allow nothing (fail closed). */
  invalid: string[];
}

const everyone: AllowList = { allows: () => true, invalid: [] };

/** An empty list allows every address, as Supavisor's default (`0.0.0.0/0`, `::/0`) does. */
export function compileAllowList(cidrs: readonly string[]): AllowList {
  if (cidrs.length === 0) return everyone;
  const list = new BlockList();
  const invalid: string[] = [];
  for (const entry of cidrs) {
    const [address = "", prefixText, ...extra] = entry.trim().split("/");
    const family = isIP(address);
    const maxPrefix = family === 4 ? 32 : 128;
    const prefix = prefixText === undefined ? maxPrefix : Number(prefixText);
    if (family === 0 || extra.length > 0 || !/^\d{1,3}$/.test(prefixText ?? "0") || prefix > maxPrefix) {
      invalid.push(entry);
      continue;
    }
    list.addSubnet(address, prefix, family === 4 ? "ipv4" : "ipv6");
  }
  return {
    invalid,
    // BlockList matches IPv4-mapped IPv6 addresses (::ffff:a.b.c.d) against IPv4 subnets itself.
    allows: (address) => {
      const family = isIP(address);
      return family !== 0 && list.check(address, family === 4 ? "ipv4" : "ipv6");
    },
  };
}

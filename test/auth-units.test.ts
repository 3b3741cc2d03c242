import assert from "node:assert/strict";
import { Metadata } from "@grpc/grpc-js";
import { createGuardedFetch, isPublicAddress, OutboundRefused } from "../src/auth/outbound";
import { clientAddressRule } from "../src/call/client-address";
import { loadConfig } from "../src/config";

describe("auth units", () => {
  describe("isPublicAddress", () => {
    const table: [string, boolean][] = [
      ["8.8.8.8", true],
      ["2606:4700:4700::1111", true],
      ["127.0.0.1", false],
      ["127.8.9.10", false],
      ["10.1.2.3", false],
      ["172.16.0.1", false],
      ["172.31.255.255", false],
      ["192.168.1.1", false],
      ["169.254.169.254", false],
      ["100.64.0.1", false],
      ["0.0.0.0", false],
      ["224.0.0.1", false],
      ["::1", false],
      ["::", false],
      ["fd00::1", false],
      ["fe80::1", false],
      ["::ffff:127.0.0.1", false],
      ["::ffff:10.0.0.1", false],
      ["64:ff9b::a00:1", false],
      ["not an address", false],
    ];
    for (const [address, expected] of table) {
      it(`${address} is ${expected ? "public" : "not public"}`, () => {
        assert.equal(isPublicAddress(address), expected);
      });
    }
  });

  describe("the guarded fetch", () => {
    const guarded = createGuardedFetch({ allowInsecure: false });
    const refusals: [string, string][] = [
      ["plain http", "http://example.com/.well-known/openid-configuration"],
      ["a loopback literal", "https://127.0.0.1/x"],
      ["an IPv6 loopback literal", "https://[::1]/x"],
      ["the cloud metadata address", "https://169.254.169.254/latest"],
      ["a name that resolves to loopback", "https://localhost/x"],
      ["another scheme", "file:///etc/passwd"],
    ];
    for (const [label, url] of refusals) {
      it(`refuses ${label}`, async () => {
        await assert.rejects(guarded(url), OutboundRefused);
      });
    }
  });

  describe("the client address rule (QOD_TRUSTED_PROXIES)", () => {
    const ctx = (peer: string, forwarded?: string) => {
      const metadata = new Metadata();
      if (forwarded) metadata.set("x-forwarded-for", forwarded);
      return { peer, metadata };
    };
    const rule = (trusted?: string) => clientAddressRule(loadConfig(trusted === undefined ? {} : { QOD_TRUSTED_PROXIES: trusted }).trustedProxies);

    it("takes the peer's address without its port", () => {
      assert.equal(rule()(ctx("203.0.113.7:5555")), "203.0.113.7");
      assert.equal(rule()(ctx("2001:db8::7:5555")), "2001:db8::7");
      assert.equal(rule()(ctx("::ffff:203.0.113.7:5555")), "203.0.113.7", "an IPv4-mapped address is its IPv4 address");
    });

    it("ignores x-forwarded-for entirely when no proxy is trusted, from loopback too", () => {
      assert.equal(rule()(ctx("127.0.0.1:5555", "198.51.100.1, 203.0.113.9")), "127.0.0.1");
      assert.equal(rule()(ctx("::1:5555", "203.0.113.9")), "::1");
    });

    it("walks the header from the right while the hop is a trusted proxy", () => {
      const trusted = rule("127.0.0.0/8, 10.0.0.0/8, ::1");
      assert.equal(trusted(ctx("127.0.0.1:5555", "198.51.100.1, 203.0.113.9")), "203.0.113.9");
      assert.equal(trusted(ctx("127.0.0.1:5555", "198.51.100.1, 203.0.113.9, 10.1.2.3")), "203.0.113.9", "through two proxies");
      assert.equal(trusted(ctx("::1:5555", "203.0.113.9")), "203.0.113.9");
      assert.equal(trusted(ctx("203.0.113.7:5555", "198.51.100.1")), "203.0.113.7", "an untrusted peer's header is ignored");
      assert.equal(trusted(ctx("127.0.0.1:5555", "not-an-ip")), "127.0.0.1", "garbage from a trusted proxy: the proxy is the client");
      assert.equal(trusted(ctx("127.0.0.1:5555", "10.0.0.1, 10.0.0.2")), "10.0.0.1", "all trusted: the leftmost hop");
      assert.equal(trusted(ctx("127.0.0.1:5555")), "127.0.0.1");
    });

    it("walks a REST call the same way: the gateway appends the HTTP peer and gives it as the peer", () => {
      assert.equal(rule()(ctx("198.51.100.4:4000", "203.0.113.9, 198.51.100.4")), "198.51.100.4");
      assert.equal(rule("198.51.100.4")(ctx("198.51.100.4:4000", "203.0.113.9, 198.51.100.4")), "203.0.113.9");
    });

    it("refuses a configuration that is not addresses or CIDRs", () => {
      for (const bad of ["10.0.0.0/33", "example.com", "10.0.0.1/8/1", "::1/129"]) {
        assert.throws(() => loadConfig({ QOD_TRUSTED_PROXIES: bad }), /QOD_TRUSTED_PROXIES/);
      }
    });
  });
});

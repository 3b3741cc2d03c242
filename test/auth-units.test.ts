import assert from "node:assert/strict";
import { Metadata } from "@grpc/grpc-js";
import { createGuardedFetch, isPublicAddress, OutboundRefused } from "../src/auth/outbound";
import { sourceAddress } from "../src/auth/throttle";

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

  describe("sourceAddress", () => {
    const ctx = (peer: string, forwarded?: string) => {
      const metadata = new Metadata();
      if (forwarded) metadata.set("x-forwarded-for", forwarded);
      return { peer, metadata };
    };
    it("takes the peer's address without its port", () => {
      assert.equal(sourceAddress(ctx("203.0.113.7:5555")), "203.0.113.7");
      assert.equal(sourceAddress(ctx("2001:db8::7:5555")), "2001:db8::7");
    });
    it("trusts x-forwarded-for only from loopback, and only its last entry", () => {
      assert.equal(sourceAddress(ctx("127.0.0.1:5555", "198.51.100.1, 203.0.113.9")), "203.0.113.9");
      assert.equal(sourceAddress(ctx("::1:5555", "203.0.113.9")), "203.0.113.9");
      assert.equal(sourceAddress(ctx("203.0.113.7:5555", "198.51.100.1")), "203.0.113.7");
      assert.equal(sourceAddress(ctx("127.0.0.1:5555", "not-an-ip")), "127.0.0.1");
    });
  });
});

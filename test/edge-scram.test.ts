import assert from "node:assert/strict";
import { createHash, createHmac, pbkdf2Sync } from "node:crypto";
import {
  DummyVerifiers,
  formatScramVerifier,
  parseScramVerifier,
  preparePassword,
  ScramError,
  ScramServerExchange,
  scramVerifier,
  type ScramVerifier,
} from "../src/scram";
import { asSuperuser } from "./helpers/edge";
import { uniquePrefix } from "./helpers/postgres";

// RFC 7677 §3: user "user", password "pencil".
const RFC = {
  salt: "W22ZaJ0SNY7soEsUEjb6gQ==",
  serverNonce: "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
  clientFirst: "n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
  serverFirst: "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
  clientFinal: "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
  serverFinal: "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
};

const rfcVerifier = (): ScramVerifier => parseScramVerifier(scramVerifier("pencil", { salt: Buffer.from(RFC.salt, "base64") }))!;

/** The client's proof for a client-final-message without proof (what libpq computes). */
function clientProof(password: string, verifier: ScramVerifier, authMessage: string): string {
  const salted = pbkdf2Sync(preparePassword(password), verifier.salt, verifier.iterations, 32, "sha256");
  const clientKey = createHmac("sha256", salted).update("Client Key").digest();
  const signature = createHmac("sha256", createHash("sha256").update(clientKey).digest()).update(authMessage).digest();
  return Buffer.from(clientKey.map((b, i) => b ^ signature[i])).toString("base64");
}

describe("edge SCRAM-SHA-256", () => {
  describe("the RFC 7677 example", () => {
    it("answers the server-first-message of the RFC", () => {
      const exchange = new ScramServerExchange(rfcVerifier(), RFC.serverNonce);
      assert.equal(exchange.start(RFC.clientFirst), RFC.serverFirst);
    });

    it("accepts the RFC's proof and answers its server signature", () => {
      const exchange = new ScramServerExchange(rfcVerifier(), RFC.serverNonce);
      exchange.start(RFC.clientFirst);
      assert.deepEqual(exchange.finish(RFC.clientFinal), { ok: true, serverFinal: RFC.serverFinal });
    });

    it("refuses the same exchange against another password's verifier", () => {
      const other = parseScramVerifier(scramVerifier("pencil2", { salt: Buffer.from(RFC.salt, "base64") }))!;
      const exchange = new ScramServerExchange(other, RFC.serverNonce);
      exchange.start(RFC.clientFirst);
      assert.deepEqual(exchange.finish(RFC.clientFinal), { ok: false });
    });
  });

  describe("protocol checks", () => {
    const started = (clientFirst = RFC.clientFirst) => {
      const exchange = new ScramServerExchange(rfcVerifier(), RFC.serverNonce);
      exchange.start(clientFirst);
      return exchange;
    };
    const cases: Array<[string, () => unknown]> = [
      ["a channel binding request (p=), since -PLUS is never offered", () => started("p=tls-server-end-point,,n=,r=abc")],
      ["an authorization identity", () => started("n,a=admin,n=user,r=abc")],
      ["a mandatory extension", () => started("n,,m=ext,n=user,r=abc")],
      ["an empty nonce", () => started("n,,n=user,r=")],
      ["a nonce with a comma-free but non-printable character", () => started("n,,n=user,r=ab\u0001c")],
      ["an unknown GS2 flag", () => started("x,,n=user,r=abc")],
      ["a client-final with another nonce", () => started().finish(RFC.clientFinal.replace("k0,p=", "k1,p="))],
      ["a client-final with other channel-binding data", () => started().finish(RFC.clientFinal.replace("c=biws", "c=eSws"))],
      ["a proof that is not 32 bytes", () => started().finish(RFC.clientFinal.replace(/p=.*$/, "p=AAAA"))],
      ["a client-final without proof", () => started().finish(RFC.clientFinal.replace(/,p=.*$/, ""))],
      [
        "a second client-final",
        () => {
          const exchange = started();
          exchange.finish(RFC.clientFinal);
          exchange.finish(RFC.clientFinal);
        },
      ],
      ["a client-final before the client-first", () => new ScramServerExchange(rfcVerifier()).finish(RFC.clientFinal)],
      ["an oversized message", () => started(`n,,n=user,r=${"a".repeat(2000)}`)],
    ];
    for (const [name, run] of cases) {
      it(`refuses ${name} with a ScramError`, () => assert.throws(run, ScramError));
    }

    it("accepts the `y` flag (client supports channel binding, thinks the server does not)", () => {
      const verifier = rfcVerifier();
      const exchange = new ScramServerExchange(verifier, RFC.serverNonce);
      const serverFirst = exchange.start("y,,n=*,r=clientnonce");
      const withoutProof = `c=${Buffer.from("y,,").toString("base64")},r=clientnonce${RFC.serverNonce}`;
      const proof = clientProof("pencil", verifier, `n=*,r=clientnonce,${serverFirst},${withoutProof}`);
      assert.equal(exchange.finish(`${withoutProof},p=${proof}`).ok, true);
    });

    it("makes a fresh 24-character server nonce per exchange", () => {
      const nonceOf = () => new ScramServerExchange(rfcVerifier()).start("n,,n=,r=abc").split(",")[0].slice("r=abc".length);
      const [a, b] = [nonceOf(), nonceOf()];
      assert.equal(a.length, 24);
      assert.notEqual(a, b);
    });
  });

  describe("verifiers", () => {
    it("are in pg_authid's form with 4096 iterations and a 16-byte salt", () => {
      const text = scramVerifier("secret");
      assert.match(text, /^SCRAM-SHA-256\$4096:[A-Za-z0-9+/]{22}==\$[A-Za-z0-9+/]{43}=:[A-Za-z0-9+/]{43}=$/);
      assert.notEqual(scramVerifier("secret"), text, "a fresh salt each time");
      assert.equal(formatScramVerifier(parseScramVerifier(text)!), text);
    });

    for (const bad of [
      "md5" + "0".repeat(32),
      "SCRAM-SHA-256$0:c2FsdA==$" + "A".repeat(43) + "=:" + "A".repeat(43) + "=",
      "SCRAM-SHA-256$4096:c2FsdA==$AAAA:" + "A".repeat(43) + "=",
      "SCRAM-SHA-256$4096:c2Fs*A==$" + "A".repeat(43) + "=:" + "A".repeat(43) + "=",
      "SCRAM-SHA-1$4096:c2FsdA==$" + "A".repeat(43) + "=:" + "A".repeat(43) + "=",
      "",
    ]) {
      it(`parse refuses ${JSON.stringify(bad.slice(0, 32))}…`, () => assert.equal(parseScramVerifier(bad), undefined));
    }

    it("dummy verifiers are the same for one identity and differ between identities and processes", () => {
      const dummies = new DummyVerifiers();
      assert.deepEqual(dummies.verifierFor("acme\0app"), dummies.verifierFor("acme\0app"));
      assert.notDeepEqual(dummies.verifierFor("acme\0app").salt, dummies.verifierFor("acme\0ops").salt);
      assert.notDeepEqual(new DummyVerifiers().verifierFor("acme\0app").salt, dummies.verifierFor("acme\0app").salt);
      assert.equal(dummies.verifierFor("x").iterations, 4096);
      assert.equal(dummies.verifierFor("x").salt.length, 16);
    });
  });

  describe("SASLprep, compared with what Postgres itself stores", () => {
    const role = `${uniquePrefix("scram")}_role`;
    before(() => asSuperuser("postgres", (c) => c.query(`CREATE ROLE ${c.escapeIdentifier(role)}`)));
    after(() => asSuperuser("postgres", (c) => c.query(`DROP ROLE IF EXISTS ${c.escapeIdentifier(role)}`)));

    const passwords: Array<[string, string]> = [
      ["ASCII", "pencil"],
      ["ASCII with a control character (prohibited: used raw)", "bell\u0007bell"],
      ["Latin letters (NFKC changes nothing)", "pässwörd"],
      ["a ligature (NFKC maps ﬁ to fi)", "ﬁve"],
      ["a soft hyphen (mapped to nothing, RFC 4013's example)", "I\u00adX"],
      ["non-ASCII spaces (mapped to a space)", "no\u00a0break\u3000space"],
      ["a roman numeral (NFKC maps Ⅳ to IV)", "\u2163"],
      ["right-to-left text only", "\u0627\u0644\u0639\u0631\u0628\u064a\u0629"],
      ["mixed directions (bidi rule broken: used raw)", "abc\u05d0\ufb01"],
      ["a private-use character (prohibited: used raw)", "\ue000\ufb01"],
      ["only characters mapped to nothing (empty: used raw)", "\u00ad\u200b"],
    ];
    for (const [name, password] of passwords) {
      it(`derives Postgres's verifier for ${name}`, async () => {
        const stored = await asSuperuser("postgres", async (c) => {
          await c.query("SET password_encryption = 'scram-sha-256'");
          await c.query(`ALTER ROLE ${c.escapeIdentifier(role)} PASSWORD ${c.escapeLiteral(password)}`);
          const r = await c.query<{ rolpassword: string }>("SELECT rolpassword FROM pg_authid WHERE rolname = $1", [role]);
          return r.rows[0].rolpassword;
        });
        const parsed = parseScramVerifier(stored)!;
        assert.equal(scramVerifier(password, { salt: parsed.salt, iterations: parsed.iterations }), stored);
      });
    }
  });
});

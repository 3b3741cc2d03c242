// A real OIDC issuer on loopback (plain http, so the app under test must run with
// QOD_OIDC_ALLOW_INSECURE=true): discovery and JWKS for any issuer path under it, keys made
// with jose, and a counter of the requests it served.
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { exportJWK, generateKeyPair, SignJWT, type JWTPayload } from "jose";

type KeyPair = Awaited<ReturnType<typeof generateKeyPair>>;

export interface TestIssuer {
  /** `http://127.0.0.1:<port>`; an issuer is this plus a path, e.g. `/realms/acme`. */
  base: string;
  /** Requests served so far, by path. */
  requests: string[];
  /** Signs an ID token for `issuer` with the published key (or `key`, e.g. an unpublished one). */
  sign(issuer: string, claims: JWTPayload, options?: { key?: KeyPair; kid?: string; expiresIn?: string | number }): Promise<string>;
  /** A key pair the issuer does not publish. */
  rogue: KeyPair;
  close(): Promise<void>;
}

const DISCOVERY = "/.well-known/openid-configuration";
const JWKS = "/jwks";

export async function startTestIssuer(): Promise<TestIssuer> {
  const published = await generateKeyPair("RS256");
  const rogue = await generateKeyPair("RS256");
  const jwk = { ...(await exportJWK(published.publicKey)), kid: "k1", alg: "RS256", use: "sig" };
  const requests: string[] = [];
  let base = "";
  const server: Server = createServer((req, res) => {
    const path = req.url ?? "";
    requests.push(path);
    const send = (body: unknown) => {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify(body));
    };
    if (path.endsWith(DISCOVERY)) {
      const issuer = `${base}${path.slice(0, -DISCOVERY.length)}`;
      send({ issuer, jwks_uri: `${issuer}${JWKS}`, id_token_signing_alg_values_supported: ["RS256"] });
    } else if (path.endsWith(JWKS)) {
      send({ keys: [jwk] });
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    base,
    requests,
    rogue,
    sign: (issuer, claims, options = {}) =>
      new SignJWT(claims)
        .setProtectedHeader({ alg: "RS256", kid: options.kid ?? "k1", typ: "JWT" })
        .setIssuer(issuer)
        .setIssuedAt()
        .setExpirationTime(options.expiresIn ?? "5m")
        .sign((options.key ?? published).privateKey),
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((err) => (err ? reject(err) : resolve()));
      }),
  };
}

// A real OIDC issuer on loopback (plain http, or https with a given certificate; either way the app
// under test must run with QOD_OIDC_ALLOW_INSECURE=true, for the private address): discovery and
// JWKS for any issuer path under it, keys made with jose, and a counter of the requests it served.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createTlsServer } from "node:https";
import type { AddressInfo } from "node:net";
import { exportJWK, generateKeyPair, SignJWT, type JWTPayload } from "jose";

type KeyPair = Awaited<ReturnType<typeof generateKeyPair>>;

export interface TestIssuer {
  /** `http://127.0.0.1:<port>` (or https); an issuer is this plus a path, e.g. `/realms/acme`. */
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

/** `tls`: serve https with this certificate (for 127.0.0.1), as an issuer that setAuth accepts. */
export async function startTestIssuer(options: { tls?: { cert: string; key: string } } = {}): Promise<TestIssuer> {
  const published = await generateKeyPair("RS256");
  const rogue = await generateKeyPair("RS256");
  const jwk = { ...(await exportJWK(published.publicKey)), kid: "k1", alg: "RS256", use: "sig" };
  const requests: string[] = [];
  let base = "";
  const handle = (req: IncomingMessage, res: ServerResponse) => {
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
  };
  const server: Server = options.tls ? createTlsServer(options.tls, handle) : createServer(handle);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  base = `${options.tls ? "https" : "http"}://127.0.0.1:${(server.address() as AddressInfo).port}`;
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

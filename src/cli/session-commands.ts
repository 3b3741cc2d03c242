// `qodctl login` (Login, or ExchangeOidcToken) stores the session token with the server it
// belongs to; `qodctl logout` revokes it there (Logout) and forgets it.
import { status as Code } from "@grpc/grpc-js";
import type { Command } from "commander";
import { AUTH_SERVICE } from "../client/clients";
import { errorDetails } from "../client/errors";
import type { ExchangeOidcTokenRequest, LoginRequest } from "../../gen/qod/v1/auth";
import { withProgress } from "./progress";
import { ask, readStdin, readStdinLines } from "./prompt";
import { CallError, examplesHelp, openConnection, readInputFile, storedSession, timeoutMs, type GlobalOptions, type Io } from "./runtime";
import { deleteSession, writeSession } from "./session-store";
import { resolveTarget, type Target } from "./target";
import { safeText } from "./terminal-text";
import { UsageError } from "./usage-error";

interface LoginOptions {
  username?: string;
  tenant?: string;
  passwordStdin?: boolean;
  idToken?: string;
}

/** The username and password: prompted for on a terminal (the password without echo), else from stdin. */
async function passwordLogin(options: LoginOptions): Promise<LoginRequest> {
  const interactive = Boolean(process.stdin.isTTY) && !options.passwordStdin;
  let username = options.username;
  if (username === undefined) {
    if (!interactive) throw new UsageError("--username is needed when the password comes from stdin");
    username = await ask("Username:", false);
  }
  const [password] = interactive ? [await ask("Password:", true)] : await readStdinLines(["password"]);
  if (!password) throw new UsageError("empty password");
  return { username, password, tenant: options.tenant ?? "" };
}

async function oidcLogin(options: LoginOptions & { idToken: string }): Promise<ExchangeOidcTokenRequest> {
  if (!options.tenant) throw new UsageError("--id-token needs --tenant (the tenant whose issuer signed it)");
  const idToken = (options.idToken === "-" ? await readStdin() : readInputFile(options.idToken)).trim();
  return { tenant: options.tenant, idToken };
}

export function addLogin(program: Command, io: Io): void {
  program
    .command("login")
    .summary("Log in and keep the session token for the next commands")
    .description(
      `Log in with a username and password (Login), or with an ID token from an OIDC tenant's issuer
(ExchangeOidcToken), and store the session token, its server and that server's TLS settings in
the config directory (mode 0600). The password is prompted for without echo on a terminal, and
read from stdin otherwise (or with --password-stdin). The token is never printed.`,
    )
    .option("--username <name>", "the login name (prompted for on a terminal)")
    .option("--tenant <tenant>", "the user's tenant; none logs into the superuser realm")
    .option("--password-stdin", "read the password from stdin, even on a terminal")
    .option("--id-token <path|->", "log in with this OIDC ID token (a file, or - for stdin) instead of a password")
    .addHelpText(
      "after",
      examplesHelp([
        "qodctl login --username admin",
        "qodctl login --tenant acme --username ann",
        "printf '%s\\n' \"$PASSWORD\" | qodctl --server qod.internal:50051 --tls login --username admin",
        "qodctl login --tenant acme --id-token token.jwt",
      ]),
    )
    .action(async (_options: unknown, self: Command) => {
      const options = self.opts<LoginOptions>();
      const globals = self.optsWithGlobals<GlobalOptions>();
      const deadlineMs = timeoutMs(globals.timeout);
      // Logging in sends no credential: only the server and its TLS are chosen.
      const target = resolveTarget({ server: globals.server, tls: globals.tls, ca: globals.ca }, { QOD_SERVER: io.env.QOD_SERVER }, storedSession(io));
      const idToken = options.idToken;
      const connection = openConnection(target, {}, deadlineMs);
      try {
        const auth = connection.client(AUTH_SERVICE);
        const call = idToken !== undefined ? auth.exchangeOidcToken(await oidcLogin({ ...options, idToken })) : auth.login(await passwordLogin(options));
        const answer = await withProgress(call, `Logging in to ${target.address}`, { env: io.env }).catch((err: unknown) => {
          throw new CallError(err, "login");
        });
        const file = writeSession(io.env, {
          server: target.address,
          tls: target.tls,
          ...(target.ca !== undefined ? { ca: target.ca } : {}),
          token: answer.token,
          username: answer.username,
          tenant: answer.tenant,
          expireTime: answer.expireTime?.toISOString() ?? "",
        });
        const who = answer.tenant ? `${answer.username} (tenant ${answer.tenant})` : answer.username;
        const until = answer.expireTime ? `; the session expires ${answer.expireTime.toISOString()}` : "";
        io.err(`Logged in to ${safeText(target.address)} as ${safeText(who)}${until}. Session stored in ${safeText(file)}.\n`);
      } finally {
        connection.close();
      }
    });
}

export function addLogout(program: Command, io: Io): void {
  program
    .command("logout")
    .summary("Revoke the stored session on its server and forget it")
    .addHelpText("after", examplesHelp(["qodctl logout"]))
    .action(async (_options: unknown, self: Command) => {
      const deadlineMs = timeoutMs(self.optsWithGlobals<GlobalOptions>().timeout);
      const session = storedSession(io);
      if (!session) {
        deleteSession(io.env); // a damaged file, if there is one
        io.err("Not logged in.\n");
        return;
      }
      // The token goes back only to the server that issued it, over the TLS it was issued over.
      const target: Target = { address: session.server, tls: session.tls, ca: session.ca, credential: { token: session.token }, credentialSource: "session" };
      const connection = openConnection(target, target.credential, deadlineMs);
      try {
        await withProgress(connection.client(AUTH_SERVICE).logout({}), `Logging out of ${session.server}`, { env: io.env });
      } catch (err) {
        // A session the server no longer accepts is as good as logged out; any other failure left it valid there.
        if (errorDetails(err)?.code !== Code.UNAUTHENTICATED) {
          deleteSession(io.env);
          const until = session.expireTime ? ` until ${session.expireTime}` : "";
          throw new CallError(err, "session", `The session was forgotten here, but ${session.server} did not revoke it: it stays valid there${until}.`);
        }
      } finally {
        connection.close();
      }
      deleteSession(io.env);
      io.err(`Logged out of ${safeText(session.server)}.\n`);
    });
}

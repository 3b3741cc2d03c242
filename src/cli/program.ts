// qodctl: the command tree built from the command table (commands.ts) and the descriptor set,
// the run of one RPC command (flags → the API's JSON → the generated client → the API's JSON
// → table, JSON or YAML), login/logout, and errors turned into `<reason>: <message>` and an
// exit status per class.
import { readFileSync } from "node:fs";
import { fromJson, toBinary, type DescField, type DescMethod } from "@bufbuild/protobuf";
import { Command, CommanderError, Option } from "commander";
import { status as Code } from "@grpc/grpc-js";
import { AUTH_SERVICE, connect, type Connection, type ConnectOptions, type GeneratedService, type GeneratedServiceDefinition } from "../client/clients";
import { errorDetails } from "../client/errors";
import { PACKAGE_ROOT } from "../package-root";
import { GROUPS, VIEWS, type Argument, type CommandGroup, type RpcCommand, type SecretField } from "./commands";
import { completionScript, SHELLS } from "./completion";
import { EXIT, EXIT_CODES_HELP, exitCodeForStatus } from "./exit-codes";
import { fieldNamed, flagKind, flagValue, getField, kebab, mergeFlag, parseDuration, parseRequestFile, placeholder, setField, type FlagKind, type JsonObject } from "./fields";
import { OUTPUT_FORMATS, renderJson, renderTable, renderYaml, type OutputFormat } from "./output";
import { withProgress } from "./progress";
import { ask, readStdin, readStdinLines } from "./prompt";
import { loadSchema, type Schema } from "./schema";
import { deleteSession, readSession, writeSession, type StoredSession } from "./session-store";
import { DEFAULT_SERVER, resolveTarget, tlsOption, type Target, type TargetFlags } from "./target";
import { safeText } from "./terminal-text";
import { UsageError } from "./usage-error";

const DEFAULT_TIMEOUT = "30s";
const MAX_TIMEOUT_MS = 24 * 3_600_000;

interface GlobalOptions extends TargetFlags {
  timeout: string;
  output: OutputFormat;
}

/** Flags that every command has; a request field may not take one of these names. */
const RESERVED_FLAGS = new Set(["server", "api-key", "token", "tls", "ca", "timeout", "output", "file", "password-stdin", "help", "version"]);

const HELP_FOOTER = `
Credentials, in order: --api-key, QOD_API_KEY, --token (sent as Authorization: Bearer),
then the session \`qodctl login\` stored, which is only sent to the server it came from.
Server, in order: --server, QOD_SERVER, the stored session's, ${DEFAULT_SERVER}.

Every command takes -f, --file <path|-> with the whole request as the JSON API's body
(positional arguments and flags override its fields), and -o json prints exactly the JSON
API's answer for the same call.

Files: $XDG_CONFIG_HOME/qodctl/session.json (default ~/.config/qodctl/session.json), mode 0600.

${EXIT_CODES_HELP}

Examples:
  $ qodctl login --username admin
  $ qodctl tenant create acme
  $ qodctl db create acme sales --kind ducklake --schema mart
  $ qodctl pool create acme sales bi --size 2
  $ qodctl -o json tenant list
  $ QOD_API_KEY=... qodctl --server qod.internal:50051 --tls db list acme
`;

/** Where the command's output goes; the tests' child processes and a terminal alike. */
interface Io {
  env: NodeJS.ProcessEnv;
  out(text: string): void;
  err(text: string): void;
}

/** Each line made safe, so a message may still span lines. */
const safeLines = (text: string) => `${text.trimEnd().split("\n").map(safeText).join("\n")}\n`;

const examplesHelp = (examples: readonly string[]) => `\nExamples:\n${examples.map((e) => `  $ ${e}`).join("\n")}\n`;

function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(`${PACKAGE_ROOT}/package.json`, "utf8")) as { version?: string };
  return pkg.version ?? "0.0.0";
}

function timeoutMs(text: string): number {
  const ms = parseDuration(text, true);
  if (ms === undefined || ms <= 0 || ms > MAX_TIMEOUT_MS) throw new UsageError(`--timeout: expected a duration such as 30s, 2m or 500ms (at most 24h), got "${text}"`);
  return ms;
}

/** The stored session, or undefined (with a note) when the file cannot be used. */
function storedSession(io: Io): StoredSession | undefined {
  try {
    return readSession(io.env);
  } catch (err) {
    io.err(`warning: ignoring the stored session: ${safeText((err as Error).message)}\n`);
    return undefined;
  }
}

function openConnection(target: Target, credential: Pick<ConnectOptions, "apiKey" | "token">, deadlineMs: number): Connection {
  try {
    return connect({ address: target.address, ...credential, tls: tlsOption(target), deadlineMs });
  } catch (err) {
    if (err instanceof UsageError) throw err;
    // connect() rejects bad credentials and deadlines with TypeError/RangeError; the message names no secret.
    throw new UsageError((err as Error).message);
  }
}

/** The generated definition's method key (`createTenant`) of an RPC. */
function methodKey(service: GeneratedService<GeneratedServiceDefinition>, rpc: string): string {
  const definition = service.Client.service;
  const key = Object.keys(definition).find((k) => definition[k]!.path.endsWith(`/${rpc}`));
  if (!key) throw new Error(`the generated client has no ${rpc}`);
  return key;
}

/** Calls one RPC with request bytes and answers the response bytes, through the generated client's types. */
async function callRpc(connection: Connection, service: GeneratedService<GeneratedServiceDefinition>, key: string, requestBytes: Uint8Array, progress: { text: string; immediate: boolean }): Promise<Buffer> {
  const definition = service.Client.service[key]!;
  const client = connection.client(service) as Record<string, (request: unknown) => Promise<unknown>>;
  // The request was checked and encoded from the API's JSON; the generated codecs carry it from there.
  const request = definition.requestDeserialize(Buffer.from(requestBytes));
  const response = await withProgress(client[key]!(request), progress.text, { immediate: progress.immediate });
  return (definition.responseSerialize as (value: unknown) => Buffer)(response);
}

/** A failed call, with what the error report needs to give a useful hint. */
class CallError extends Error {
  constructor(
    readonly failure: unknown,
    readonly credentialSource: Target["credentialSource"] | "login",
    readonly note?: string,
  ) {
    super("the call failed");
  }
}

interface FlagSpec {
  field: DescField;
  kind: FlagKind;
  flag: string;
  /** commander's attribute name for the flag. */
  attribute: string;
}

/** Secrets read from a terminal prompt (no echo), or stdin's lines when stdin is not a terminal or `fromStdin`. */
async function readSecrets(secrets: readonly SecretField[], fromStdin: boolean): Promise<string[]> {
  if (secrets.length === 0) return [];
  if (fromStdin || !process.stdin.isTTY) return readStdinLines(secrets.map((s) => s.prompt.toLowerCase()));
  const values: string[] = [];
  for (const secret of secrets) {
    const value = await ask(`${secret.prompt}:`, true);
    if (value === "") throw new UsageError(`empty ${secret.prompt.toLowerCase()}`);
    if (secret.confirm && (await ask(`Repeat ${secret.prompt.toLowerCase()}:`, true)) !== value) {
      throw new UsageError(`the two ${secret.prompt.toLowerCase()} entries differ`);
    }
    values.push(value);
  }
  return values;
}

async function print(io: Io, format: OutputFormat, body: string, method: DescMethod, done: string): Promise<void> {
  if (format === "json") return io.out(renderJson(body, Boolean(process.stdout.isTTY)));
  if (format === "yaml") return io.out(await renderYaml(body));
  const rendered = await renderTable(body, method.output, VIEWS, done);
  io.out(rendered.stdout);
  io.err(rendered.stderr);
}

function addRpcCommand(parent: Command, group: CommandGroup, spec: RpcCommand, schema: Schema, io: Io): void {
  const service = group.service;
  if (!service) throw new Error(`group "${group.path.join(" ")}" has commands but no service`);
  const key = methodKey(service, spec.rpc);
  const method = schema.method(service.Client.service[key]!.path);
  const input = method.input;
  const args = (spec.args ?? []).map((arg: Argument) => (typeof arg === "string" ? { field: fieldNamed(input, arg), name: arg } : { field: fieldNamed(input, arg.field), name: arg.name }));
  const secrets = (spec.secrets ?? []).map((secret) => ({ ...secret, descField: fieldNamed(input, secret.field) }));
  const fixed = Object.entries(spec.fixed ?? {}).map(([name, value]) => ({ field: fieldNamed(input, name), value }));
  const skip = new Set<DescField>([...args.map((a) => a.field), ...secrets.map((s) => s.descField), ...fixed.map((f) => f.field), ...(spec.hidden ?? []).map((h) => fieldNamed(input, h))]);
  for (const name of Object.keys(spec.flags ?? {})) fieldNamed(input, name);

  const command = parent.command(spec.name).summary(spec.summary ?? schema.comment(method));
  const http = schema.httpRule(method);
  command.description(`${spec.summary ?? schema.comment(method)}\n\nCalls ${method.parent.typeName}.${method.name}${http ? ` (${http})` : ""}.`);
  for (const arg of args) command.argument(`<${arg.name}>`, schema.comment(arg.field));

  const flags: FlagSpec[] = [];
  for (const field of input.fields) {
    if (skip.has(field)) continue;
    const kind = flagKind(field);
    if (!kind) continue; // nested messages: -f only
    const flag = spec.flags?.[field.jsonName] ?? kebab(field.jsonName);
    if (RESERVED_FLAGS.has(flag)) throw new Error(`${method.input.typeName}.${field.name}: --${flag} is a global flag; rename it in the command table`);
    const option = new Option(kind === "boolean" ? `--${flag}` : `--${flag} ${placeholder(kind)}`, schema.comment(field));
    if (kind === "map" || kind === "list") option.argParser((value: string, previous: string[] | undefined) => [...(previous ?? []), value]);
    if (kind === "enum" && field.fieldKind === "enum") option.choices(field.enum.values.map((v) => v.name));
    command.addOption(option);
    flags.push({ field, kind, flag, attribute: option.attributeName() });
  }
  command.option("-f, --file <path|->", "the request as the API's JSON (- reads stdin); arguments and flags override its fields");
  if (secrets.length > 0) command.option("--password-stdin", "read the password(s) from stdin, one per line, even on a terminal");
  command.addHelpText("after", examplesHelp(spec.examples));

  command.action(async (...actionArgs: unknown[]) => {
    const self = actionArgs.at(-1) as Command;
    const options = self.opts<Record<string, unknown>>();
    const globals = self.optsWithGlobals<GlobalOptions>();
    const deadlineMs = timeoutMs(globals.timeout);

    const file = options.file as string | undefined;
    const request: JsonObject = file === undefined ? {} : parseRequestFile(file === "-" ? "stdin" : file, file === "-" ? await readStdin() : readRequestFile(file));
    for (const flag of flags) {
      const value = options[flag.attribute];
      if (value !== undefined) mergeFlag(request, flag.field, flag.kind, flagValue(`--${flag.flag}`, flag.field, flag.kind, value));
    }
    args.forEach((arg, i) => setField(request, arg.field, self.processedArgs[i] as string));
    for (const { field, value } of fixed) setField(request, field, value);
    const missing = secrets.filter((s) => !getField(request, s.descField));
    const fromStdin = options.passwordStdin === true;
    if (missing.length > 0 && file === "-" && (fromStdin || !process.stdin.isTTY)) throw new UsageError("-f - already reads standard input: put the password in the file, or run on a terminal");
    (await readSecrets(missing, fromStdin)).forEach((value, i) => setField(request, missing[i]!.descField, value));

    let requestBytes: Uint8Array;
    try {
      requestBytes = toBinary(input, fromJson(input, request, { registry: schema.registry }));
    } catch (err) {
      throw new UsageError(`invalid request: ${(err as Error).message}`);
    }

    const target = resolveTarget(globals, io.env, storedSession(io));
    const connection = openConnection(target, target.credential, deadlineMs);
    try {
      const progressText = spec.progress?.(request);
      const responseBytes = await callRpc(connection, service, key, requestBytes, {
        text: progressText ?? `Waiting for ${target.address}`,
        immediate: progressText !== undefined,
      }).catch((err: unknown) => {
        throw new CallError(err, target.credentialSource);
      });
      await print(io, globals.output, schema.responseJson(method, responseBytes), method, spec.done?.(request) ?? "Done.");
    } finally {
      connection.close();
    }
  });
}

function readRequestFile(file: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch (err) {
    throw new UsageError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

function addLogin(program: Command, io: Io): void {
  program
    .command("login")
    .summary("Log in and keep the session token for the next commands")
    .description(
      `Log in with a username and password (Login), or with an ID token from an OIDC tenant's issuer
(ExchangeOidcToken), and store the session token and its server in the config directory
(mode 0600). The password is prompted for without echo on a terminal, and read from stdin
otherwise (or with --password-stdin). The token is never printed.`,
    )
    .option("--username <name>", "the login name (prompted for on a terminal)")
    .option("--tenant <tenant>", "the user's tenant; none logs into the superuser realm")
    .option("--password-stdin", "read the password from stdin, even on a terminal")
    .option("--id-token <path|->", "log in with this OIDC ID token (a file, or - for stdin) instead of a password")
    .addHelpText("after", examplesHelp(["qodctl login --username admin", "qodctl login --tenant acme --username ann", "printf '%s\\n' \"$PASSWORD\" | qodctl --server qod.internal:50051 --tls login --username admin", "qodctl login --tenant acme --id-token token.jwt"]))
    .action(async (_options: unknown, self: Command) => {
      const options = self.opts<{ username?: string; tenant?: string; passwordStdin?: boolean; idToken?: string }>();
      const globals = self.optsWithGlobals<GlobalOptions>();
      const deadlineMs = timeoutMs(globals.timeout);
      // Logging in sends no credential; the target is only the server and its TLS.
      const target = resolveTarget({ server: globals.server, tls: globals.tls, ca: globals.ca }, { QOD_SERVER: io.env.QOD_SERVER }, storedSession(io));
      const tenant = options.tenant ?? "";

      let exchange: () => Promise<{ token: string; username: string; tenant: string; expireTime?: Date | undefined }>;
      const connection = openConnection(target, {}, deadlineMs);
      try {
        const auth = connection.client(AUTH_SERVICE);
        if (options.idToken !== undefined) {
          if (!tenant) throw new UsageError("--id-token needs --tenant (the tenant whose issuer signed it)");
          const idToken = (options.idToken === "-" ? await readStdin() : readRequestFile(options.idToken)).trim();
          exchange = () => auth.exchangeOidcToken({ tenant, idToken });
        } else {
          const interactive = process.stdin.isTTY && !options.passwordStdin;
          let username = options.username;
          if (username === undefined) {
            if (!interactive) throw new UsageError("--username is needed when the password comes from stdin");
            username = await ask("Username:", false);
          }
          const [password] = interactive ? [await ask("Password:", true)] : await readStdinLines(["password"]);
          if (!password) throw new UsageError("empty password");
          const login = { username, password, tenant };
          exchange = () => auth.login(login);
        }
        const answer = await withProgress(exchange(), `Logging in to ${target.address}`).catch((err: unknown) => {
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

function addLogout(program: Command, io: Io): void {
  program
    .command("logout")
    .summary("Revoke the stored session on its server and forget it")
    .addHelpText("after", examplesHelp(["qodctl logout"]))
    .action(async (_options: unknown, self: Command) => {
      const globals = self.optsWithGlobals<GlobalOptions>();
      const deadlineMs = timeoutMs(globals.timeout);
      const session = storedSession(io);
      if (!session) {
        deleteSession(io.env); // a damaged file, if any
        io.err("Not logged in.\n");
        return;
      }
      // The token goes back only to the server that issued it, over the TLS it was issued over.
      const target: Target = { address: session.server, tls: session.tls, ca: session.ca, credential: { token: session.token }, credentialSource: "session" };
      const connection = openConnection(target, target.credential, deadlineMs);
      try {
        await withProgress(connection.client(AUTH_SERVICE).logout({}), `Logging out of ${session.server}`);
      } catch (err) {
        // An already expired or revoked session is as good as logged out; otherwise it is still valid there.
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

function addCompletion(program: Command, io: Io): void {
  program
    .command("completion")
    .summary("Print a shell completion script")
    .argument("<shell>", `one of: ${SHELLS.join(", ")}`)
    .addHelpText("after", examplesHelp(["source <(qodctl completion bash)   # in ~/.bashrc", "qodctl completion zsh > \"${fpath[1]}/_qodctl\"   # then restart zsh"]))
    .action((shell: string) => {
      if (!(SHELLS as readonly string[]).includes(shell)) throw new UsageError(`unknown shell "${shell}": expected one of ${SHELLS.join(", ")}`);
      io.out(completionScript(program, shell as (typeof SHELLS)[number]));
    });
}

/** The group's command, made on first use (`supavisor` for `supavisor tenant`). */
function groupCommand(program: Command, group: CommandGroup): Command {
  let parent = program;
  group.path.forEach((word, i) => {
    let child = parent.commands.find((c) => c.name() === word);
    if (!child) {
      child = parent.command(word);
      child.helpCommand(false);
    }
    if (i === group.path.length - 1) {
      if (group.summary) child.summary(group.summary).description(group.summary);
      for (const alias of group.aliases ?? []) child.alias(alias);
      const examples = (group.commands ?? []).map((c) => c.examples[0]!).filter(Boolean);
      if (examples.length > 0) child.addHelpText("after", examplesHelp(examples));
    }
    parent = child;
  });
  return parent;
}

export function buildProgram(schema: Schema, io: Io): Command {
  const program = new Command("qodctl");
  program
    .description("Manage a QOD control plane over gRPC: tenants, databases, pools, users and access tokens.")
    .version(packageVersion(), "-V, --version")
    .option("-s, --server <host:port>", `the gRPC server (QOD_SERVER; default: the logged-in server, else ${DEFAULT_SERVER})`)
    .option("--api-key <key>", "send this key as x-api-key: the static key, a session or an access token (QOD_API_KEY)")
    .option("--token <token>", "send this token as Authorization: Bearer (a session token or a service JWT)")
    .option("--tls", "use TLS, trusting the system's CA certificates")
    .option("--ca <file>", "use TLS, trusting the CA certificates in this PEM file")
    .option("--timeout <duration>", "deadline of each call, e.g. 30s, 2m, 500ms", DEFAULT_TIMEOUT)
    .addOption(new Option("-o, --output <format>", "output format").choices(OUTPUT_FORMATS).default("table"))
    .showHelpAfterError("(run with --help for usage)")
    .configureOutput({
      writeOut: (text) => io.out(text),
      writeErr: (text) => io.err(text),
      outputError: (text, write) => write(safeLines(text)),
    })
    .exitOverride()
    .addHelpText("after", HELP_FOOTER);

  addLogin(program, io);
  addLogout(program, io);
  for (const group of GROUPS) {
    const parent = groupCommand(program, group);
    for (const spec of group.commands ?? []) addRpcCommand(parent, group, spec, schema, io);
  }
  addCompletion(program, io);
  return program;
}

/** `<reason>: <message>`, BadRequest violations one per line, and a hint where one helps. */
function reportCallError(io: Io, err: unknown): number | undefined {
  const call = err instanceof CallError ? err : undefined;
  const details = errorDetails(call ? call.failure : err);
  if (!details) return undefined;
  const { credentialSource, note } = call ?? {};
  const violations = details.fieldViolations;
  // The server's message of an invalid request lists the violations itself: print them once.
  const messageIsViolations = violations.length > 0 && details.message === violations.map((v) => `${v.field}: ${v.description}`).join("; ");
  io.err(`${safeText(details.reason)}: ${messageIsViolations ? "" : safeText(details.message)}`.trimEnd() + "\n");
  for (const v of violations) io.err(`  ${safeText(v.field)}: ${safeText(v.description)}\n`);
  if (details.code === Code.UNAUTHENTICATED && credentialSource === "session") io.err("The stored session is no longer valid: run `qodctl login`.\n");
  if (details.code === Code.UNAUTHENTICATED && credentialSource === "none") io.err("Not logged in: run `qodctl login`, or set QOD_API_KEY.\n");
  if (note) io.err(`${safeText(note)}\n`);
  return exitCodeForStatus(details.code);
}

/** Runs qodctl with `argv` (without node and the script); answers the exit status. */
export async function run(argv: readonly string[], io: Io): Promise<number> {
  try {
    const program = buildProgram(loadSchema(), io);
    await program.parseAsync([...argv], { from: "user" });
    return EXIT.OK;
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version "fail" with exit code 0; everything else commander rejects is usage.
      return err.exitCode === 0 ? EXIT.OK : EXIT.USAGE;
    }
    const callExit = reportCallError(io, err);
    if (callExit !== undefined) return callExit;
    if (err instanceof UsageError) {
      io.err(`error: ${safeText(err.message)}\n`);
      return EXIT.USAGE;
    }
    // Never a stack: a one-line account of what went wrong.
    io.err(`error: ${safeText(err instanceof Error ? err.message : String(err))}\n`);
    return EXIT.OTHER;
  }
}

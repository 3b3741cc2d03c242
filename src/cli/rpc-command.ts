// One command of the command table: its arguments and flags made from the RPC's request
// message, and its run: -f, flags, arguments and secrets → the API's JSON → checked and encoded
// by the descriptor → the generated client → the response as the JSON API prints it → a table,
// JSON or YAML.
import { fromJson, toBinary, type DescField, type DescMethod } from "@bufbuild/protobuf";
import { Option, type Command } from "commander";
import type { Connection, GeneratedService, GeneratedServiceDefinition } from "../client/clients";
import type { CommandGroup, RpcCommand, SecretField } from "./commands";
import { fieldNamed, flagKind, flagValue, getField, kebab, mergeFlag, parseRequestFile, placeholder, setField, type FlagKind, type JsonObject } from "./fields";
import { renderJson, renderTable, renderYaml, type OutputFormat } from "./output";
import { withProgress } from "./progress";
import { ask, readStdin, readStdinLines } from "./prompt";
import { CallError, examplesHelp, openConnection, readInputFile, storedSession, timeoutMs, type GlobalOptions, type Io } from "./runtime";
import type { Schema } from "./schema";
import { resolveTarget } from "./target";
import { VIEWS } from "./views";
import { UsageError } from "./usage-error";

/** Flags every command has; a request field may not take one of these names. */
const RESERVED_FLAGS = new Set(["server", "api-key", "token", "tls", "ca", "timeout", "output", "file", "password-stdin", "help", "version"]);

interface Flag {
  field: DescField;
  kind: FlagKind;
  name: string;
  /** commander's key for its value. */
  attribute: string;
}

/** The generated definition's key (`createTenant`) of an RPC. */
function methodKey(service: GeneratedService<GeneratedServiceDefinition>, rpc: string): string {
  const definition = service.Client.service;
  const key = Object.keys(definition).find((k) => definition[k].path.endsWith(`/${rpc}`));
  if (!key) throw new Error(`the generated client has no ${rpc}`);
  return key;
}

/** Calls an RPC with request bytes through the generated client and its codecs; answers the response bytes. */
async function callRpc(connection: Connection, service: GeneratedService<GeneratedServiceDefinition>, key: string, requestBytes: Uint8Array, progress: { text: string; immediate: boolean; env: NodeJS.ProcessEnv }): Promise<Buffer> {
  const definition = service.Client.service[key];
  const client = connection.client(service) as Record<string, (request: unknown) => Promise<unknown>>;
  const request = definition.requestDeserialize(Buffer.from(requestBytes));
  const response = await withProgress(client[key](request), progress.text, progress);
  return (definition.responseSerialize as (value: unknown) => Buffer)(response);
}

/** Secrets from a terminal prompt (no echo), or stdin's lines when stdin is not a terminal or `fromStdin`. */
async function readSecrets(secrets: readonly SecretField[], fromStdin: boolean): Promise<string[]> {
  if (secrets.length === 0) return [];
  if (fromStdin || !process.stdin.isTTY) return readStdinLines(secrets.map((s) => s.prompt.toLowerCase()));
  const values: string[] = [];
  for (const secret of secrets) {
    const what = secret.prompt.toLowerCase();
    const value = await ask(`${secret.prompt}:`, true);
    if (value === "") throw new UsageError(`empty ${what}`);
    if (secret.confirm && (await ask(`Repeat ${what}:`, true)) !== value) throw new UsageError(`the two ${what} entries differ`);
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

/** The flags of a request's fields that are neither arguments, secrets, fixed nor hidden. */
function addFlags(command: Command, method: DescMethod, spec: RpcCommand, skip: ReadonlySet<DescField>, schema: Schema): Flag[] {
  const flags: Flag[] = [];
  for (const field of method.input.fields) {
    const kind = flagKind(field);
    if (skip.has(field) || !kind) continue; // a nested message is only for -f
    const name = spec.flags?.[field.jsonName] ?? kebab(field.jsonName);
    if (RESERVED_FLAGS.has(name)) throw new Error(`${method.input.typeName}.${field.name}: --${name} is a global flag; rename it in the command table`);
    const option = new Option(kind === "boolean" ? `--${name}` : `--${name} ${placeholder(kind)}`, schema.comment(field));
    if (kind === "map" || kind === "list") option.argParser((value: string, previous: string[] | undefined) => [...(previous ?? []), value]);
    if (field.fieldKind === "enum") option.choices(field.enum.values.map((v) => v.name));
    command.addOption(option);
    flags.push({ field, kind, name, attribute: option.attributeName() });
  }
  return flags;
}

export function addRpcCommand(parent: Command, group: CommandGroup, spec: RpcCommand, schema: Schema, io: Io): void {
  const service = group.service;
  if (!service) throw new Error(`group "${group.path.join(" ")}" has commands but no service`);
  const key = methodKey(service, spec.rpc);
  const method = schema.method(service.Client.service[key].path);
  const input = method.input;
  // Every field the table names must exist: a typo fails when the program is built, not when run.
  const args = (spec.args ?? []).map((arg) => (typeof arg === "string" ? { field: fieldNamed(input, arg), name: arg } : { field: fieldNamed(input, arg.field), name: arg.name }));
  const secrets = (spec.secrets ?? []).map((secret) => ({ ...secret, descField: fieldNamed(input, secret.field) }));
  const fixed = Object.entries(spec.fixed ?? {}).map(([name, value]) => ({ field: fieldNamed(input, name), value }));
  const hidden = (spec.hidden ?? []).map((name) => fieldNamed(input, name));
  for (const name of Object.keys(spec.flags ?? {})) fieldNamed(input, name);

  const summary = spec.summary ?? schema.comment(method);
  const http = schema.httpRule(method);
  const command = parent
    .command(spec.name)
    .summary(summary)
    .description(`${summary}\n\nCalls ${method.parent.typeName}.${method.name}${http ? ` (${http})` : ""}.`);
  for (const arg of args) command.argument(`<${arg.name}>`, schema.comment(arg.field));
  const skip = new Set([...args.map((a) => a.field), ...secrets.map((s) => s.descField), ...fixed.map((f) => f.field), ...hidden]);
  const flags = addFlags(command, method, spec, skip, schema);
  command.option("-f, --file <path|->", "the request as the API's JSON (- reads stdin); arguments and flags override its fields");
  if (secrets.length > 0) command.option("--password-stdin", "read the password(s) from stdin, one per line, even on a terminal");
  command.addHelpText("after", examplesHelp(spec.examples));

  command.action(async (...actionArgs: unknown[]) => {
    const self = actionArgs.at(-1) as Command;
    const options = self.opts<Record<string, unknown>>();
    const globals = self.optsWithGlobals<GlobalOptions>();
    const deadlineMs = timeoutMs(globals.timeout);

    // The request, in the API's JSON: the -f document, then flags, arguments and fixed values over it.
    const file = options.file as string | undefined;
    const request: JsonObject = file === undefined ? {} : file === "-" ? parseRequestFile("stdin", await readStdin()) : parseRequestFile(file, readInputFile(file));
    for (const flag of flags) {
      const value = options[flag.attribute];
      if (value !== undefined) mergeFlag(request, flag.field, flag.kind, flagValue(`--${flag.name}`, flag.field, flag.kind, value));
    }
    args.forEach((arg, i) => setField(request, arg.field, self.processedArgs[i] as string));
    for (const { field, value } of fixed) setField(request, field, value);
    const missing = secrets.filter((s) => !getField(request, s.descField));
    const fromStdin = options.passwordStdin === true;
    if (missing.length > 0 && file === "-" && (fromStdin || !process.stdin.isTTY)) throw new UsageError("-f - already reads standard input: put the password in the file, or run on a terminal");
    (await readSecrets(missing, fromStdin)).forEach((value, i) => setField(request, missing[i].descField, value));

    // Checked as the gateway checks a JSON body (unknown keys, types, RFC 3339 times).
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
      const progress = { text: progressText ?? `Waiting for ${target.address}`, immediate: progressText !== undefined, env: io.env };
      const responseBytes = await callRpc(connection, service, key, requestBytes, progress).catch((err: unknown) => {
        throw new CallError(err, target.credentialSource);
      });
      await print(io, globals.output, schema.responseJson(method, responseBytes), method, spec.done?.(request) ?? "Done.");
    } finally {
      connection.close();
    }
  });
}

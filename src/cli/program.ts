// qodctl: the command tree (the command table's groups and commands, login, logout,
// completion) and a run of it, with failures turned into `<reason>: <message>` and an exit
// status per class.
import { readFileSync } from "node:fs";
import path from "node:path";
import { status as Code } from "@grpc/grpc-js";
import { Argument, Command, CommanderError, Option } from "commander";
import { errorDetails } from "../client/errors";
import { PACKAGE_ROOT } from "../package-root";
import { GROUPS, type CommandGroup } from "./commands";
import { completionScript, SHELLS, type Shell } from "./completion";
import { EXIT, EXIT_CODES_HELP, exitCodeForStatus } from "./exit-codes";
import { OUTPUT_FORMATS } from "./output";
import { addRpcCommand } from "./rpc-command";
import { CallError, DEFAULT_TIMEOUT, examplesHelp, type Io } from "./runtime";
import { loadSchema, type Schema } from "./schema";
import { addLogin, addLogout } from "./session-commands";
import { DEFAULT_SERVER } from "./target";
import { safeText } from "./terminal-text";
import { UsageError } from "./usage-error";

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

/** Each line made safe, so a message may still span lines. */
const safeLines = (text: string) => `${text.trimEnd().split("\n").map(safeText).join("\n")}\n`;

function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(path.join(PACKAGE_ROOT, "package.json"), "utf8")) as { version?: string };
  return pkg.version ?? "0.0.0";
}

function addCompletion(program: Command, io: Io): void {
  program
    .command("completion")
    .summary("Print a shell completion script")
    .addArgument(new Argument("<shell>").choices(SHELLS))
    .addHelpText("after", examplesHelp(["source <(qodctl completion bash)   # in ~/.bashrc", "source <(qodctl completion zsh)    # in ~/.zshrc, after compinit"]))
    .action((shell: Shell) => io.out(completionScript(program, shell)));
}

/** The group's command, made on first use (`supavisor` for `supavisor tenant`). */
function groupCommand(program: Command, group: CommandGroup): Command {
  let parent = program;
  group.path.forEach((word, i) => {
    const child = parent.commands.find((c) => c.name() === word) ?? parent.command(word).helpCommand(false);
    if (i === group.path.length - 1) {
      if (group.summary) child.summary(group.summary).description(group.summary);
      for (const alias of group.aliases ?? []) child.alias(alias);
      const examples = (group.commands ?? []).flatMap((c) => c.examples.slice(0, 1));
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
    .option("--api-key <key>", "send this key as x-api-key: the static key, a session or an access token (prefer QOD_API_KEY)")
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

/** `<reason>: <message>`, BadRequest's violations one per line, and a hint where one helps. */
function reportCallError(io: Io, err: unknown): number | undefined {
  const call = err instanceof CallError ? err : undefined;
  const details = errorDetails(call ? call.failure : err);
  if (!details) return undefined;
  const violations = details.fieldViolations;
  // The server's message for invalid input lists the violations itself: they are printed once.
  const messageIsViolations = violations.length > 0 && details.message === violations.map((v) => `${v.field}: ${v.description}`).join("; ");
  io.err(`${`${safeText(details.reason)}: ${messageIsViolations ? "" : safeText(details.message)}`.trimEnd()}\n`);
  for (const v of violations) io.err(`  ${safeText(v.field)}: ${safeText(v.description)}\n`);
  if (details.code === Code.UNAUTHENTICATED && call?.credentialSource === "session") io.err("The stored session is no longer valid: run `qodctl login`.\n");
  if (details.code === Code.UNAUTHENTICATED && call?.credentialSource === "none") io.err("Not logged in: run `qodctl login`, or set QOD_API_KEY.\n");
  if (call?.note) io.err(`${safeText(call.note)}\n`);
  return exitCodeForStatus(details.code);
}

/** Runs qodctl with `argv` (without node and the script); answers the exit status. */
export async function run(argv: readonly string[], io: Io): Promise<number> {
  try {
    const program = buildProgram(loadSchema(), io);
    await program.parseAsync([...argv], { from: "user" });
    return EXIT.OK;
  } catch (err) {
    // --help and --version end with exit code 0; anything else commander rejects is usage.
    if (err instanceof CommanderError) return err.exitCode === 0 ? EXIT.OK : EXIT.USAGE;
    const callExit = reportCallError(io, err);
    if (callExit !== undefined) return callExit;
    if (err instanceof UsageError) {
      io.err(`error: ${safeText(err.message)}\n`);
      return EXIT.USAGE;
    }
    // Never a stack: one line on what went wrong.
    io.err(`error: ${safeText(err instanceof Error ? err.message : String(err))}\n`);
    return EXIT.OTHER;
  }
}

// qodctl's entry point (bin/qodctl.js runs it): runs the command, lets stdout and stderr drain,
// and exits with the command's status.
import { EXIT } from "./exit-codes";
import { run } from "./program";

// Deprecation notices are for the developers of qodctl, not its users (grpc-js names an IP
// address as the TLS server name, which Node 20 warns about on every TLS call to an IP).
process.noDeprecation = true;

// The reader of a pipe went away (`qodctl tenant list | head -1`): stop quietly, as `ls` would.
const SIGPIPE_STATUS = 141;
for (const stream of [process.stdout, process.stderr]) {
  stream.on("error", (err: NodeJS.ErrnoException) => process.exit(err.code === "EPIPE" ? SIGPIPE_STATUS : EXIT.OTHER));
}

const drained = (stream: NodeJS.WriteStream) => new Promise<void>((resolve) => stream.write("", () => resolve()));

void run(process.argv.slice(2), {
  env: process.env,
  out: (text) => void process.stdout.write(text),
  err: (text) => void process.stderr.write(text),
}).then(async (status) => {
  await Promise.all([drained(process.stdout), drained(process.stderr)]);
  // Exits now rather than when the last handle closes: a finished command has nothing left to wait for.
  process.exit(status);
});

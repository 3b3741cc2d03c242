// Secrets come from a prompt that does not echo (stdin a terminal) or from stdin's lines (a
// pipe, or --password-stdin); never from a flag, which `ps` and shell history would keep.
import { UsageError } from "./usage-error";

// Passwords are at most 72 bytes (bcrypt); this only bounds what a runaway pipe can make us hold.
const MAX_STDIN_BYTES = 1024 * 1024;

/** Asks on stderr (stdout stays the command's output); `silent` turns echo off. */
export async function ask(prompt: string, silent: boolean): Promise<string> {
  const { read } = await import("read");
  try {
    return await read({ prompt, silent, input: process.stdin, output: process.stderr, terminal: true });
  } catch (err) {
    // read rejects with "canceled" on Ctrl-C and "timed out"; neither is a usage mistake worth a stack.
    throw new UsageError(`no answer: ${(err as Error).message}`);
  } finally {
    // The Enter of a silent answer is not echoed either: end the prompt's line.
    if (silent) process.stderr.write("\n");
  }
}

/** Stdin read to its end, as UTF-8. */
export async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of process.stdin) {
    const buffer = typeof chunk === "string" ? Buffer.from(chunk) : (chunk as Buffer);
    size += buffer.length;
    if (size > MAX_STDIN_BYTES) throw new UsageError(`standard input is larger than ${MAX_STDIN_BYTES} bytes`);
    chunks.push(buffer);
  }
  return Buffer.concat(chunks).toString("utf8");
}

/** The first `count` lines of stdin, each without its line ending; each must be non-empty. */
export async function readStdinLines(names: readonly string[]): Promise<string[]> {
  const lines = (await readStdin()).split(/\r?\n/);
  return names.map((name, i) => {
    const line = lines[i];
    if (!line) throw new UsageError(`expected the ${name} on line ${i + 1} of standard input`);
    return line;
  });
}

// The end of a generator run as its own process: one JSON line on stdout for bench/run.ts, or
// the failure on stderr and exit code 1.
export function printResult(name: string, result: Promise<unknown>): void {
  result.then(
    (summary) => {
      process.stdout.write(`${JSON.stringify(summary)}\n`);
      process.exit(0);
    },
    (err: unknown) => {
      process.stderr.write(`${name}: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(1);
    },
  );
}

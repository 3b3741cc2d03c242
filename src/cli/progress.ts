// A spinner on stderr while a call runs longer than a moment (or at once, for a database being
// provisioned), only when stderr is an interactive terminal: never in pipes, files or CI logs.
const DELAY_MS = 300;

/** What yocto-spinner itself checks: a TTY that is not "dumb", outside CI. */
export function isInteractive(stream: NodeJS.WriteStream, env: NodeJS.ProcessEnv): boolean {
  return Boolean(stream.isTTY) && env.TERM !== "dumb" && !("CI" in env);
}

export async function withProgress<T>(work: Promise<T>, text: string, options: { env: NodeJS.ProcessEnv; immediate?: boolean }): Promise<T> {
  if (!isInteractive(process.stderr, options.env)) return work;
  let finished = false;
  let spinner: { stop(): unknown } | undefined;
  const timer = setTimeout(
    () => {
      void import("yocto-spinner").then(({ default: yoctoSpinner }) => {
        if (!finished) spinner = yoctoSpinner({ text, stream: process.stderr }).start();
      });
    },
    options.immediate ? 0 : DELAY_MS,
  );
  try {
    return await work;
  } finally {
    finished = true;
    clearTimeout(timer);
    spinner?.stop();
  }
}

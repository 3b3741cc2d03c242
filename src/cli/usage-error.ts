// A mistake in how qodctl was called (a flag value, a -f file, a prompt answer): exit status 2,
// with a message that names the mistake and never echoes a secret.
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

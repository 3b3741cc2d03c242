// Text from the server (names, messages, error reasons) is data, never terminal control: an
// escape sequence in a tenant's display name must not recolour, retitle or rewrite the user's
// terminal, and a bidi override must not reorder what they read.

// DEL, C1 controls, and the Unicode bidi marks, embeddings, overrides and isolates.
const UNSAFE_ABOVE_C0 = "\\u007f-\\u009f\\u061c\\u200e\\u200f\\u202a-\\u202e\\u2066-\\u2069";
/** Every character a terminal could act on: C0 controls too. */
const UNSAFE = new RegExp(`[\\u0000-\\u001f${UNSAFE_ABOVE_C0}]`, "g");
const UNSAFE_ONE = new RegExp(`[\\u0000-\\u001f${UNSAFE_ABOVE_C0}]`);
const UNSAFE_ABOVE_C0_ALL = new RegExp(`[${UNSAFE_ABOVE_C0}]`, "g");

const escapeChar = (c: string) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`;

/** `text` with every control character written as a visible `\uXXXX` escape. */
export function safeText(text: string): string {
  return text.replace(UNSAFE, escapeChar);
}

/** True when `text` has a character `safeText` would escape. */
export function hasUnsafeText(text: string): boolean {
  return UNSAFE_ONE.test(text);
}

/**
 * Serialized JSON or double-quoted YAML with the controls that their serializers leave raw
 * (DEL, C1, bidi) written as `\uXXXX`, which both formats read back as the same character. C0
 * controls are already escaped inside strings, and outside them they are the layout's newlines.
 */
export function escapeSerialized(text: string): string {
  return text.replace(UNSAFE_ABOVE_C0_ALL, escapeChar);
}

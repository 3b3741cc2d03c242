// Composes middleware once at start: the first in the list is the outermost.
import type { Handler, Middleware } from "../../call/context";

export function compose(middleware: readonly Middleware[]): (handler: Handler) => Handler {
  return (handler) => middleware.reduceRight((next, mw) => mw(next), handler);
}

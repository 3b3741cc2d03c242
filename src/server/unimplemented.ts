// Handlers for services whose issue is not done yet: every method answers UNIMPLEMENTED.
import type { ServiceDefinition } from "@grpc/grpc-js";
import { AppError } from "../errors";

export function unimplementedHandlers<D extends ServiceDefinition>(definition: D): { [K in keyof D]: () => Promise<never> } {
  const handlers = {} as { [K in keyof D]: () => Promise<never> };
  for (const key of Object.keys(definition) as (keyof D)[]) {
    handlers[key] = async () => {
      throw new AppError("unimplemented", "this method is not implemented yet");
    };
  }
  return handlers;
}

// The package's entry (`require("qod-control-plane")`): createClients and connect, the error
// helpers, and the generated service clients, service definitions and message types of qod.v1.
export * from "./clients";
export * from "./errors";
export * from "../../gen/qod/v1/tenant";
export * from "../../gen/qod/v1/database";
export * from "../../gen/qod/v1/pool";
export * from "../../gen/qod/v1/auth";
// Every generated file declares its own copy of these; naming one copy resolves the ambiguity
// (they are identical, except protobufFileName, which is tenant.proto's here).
export type { DeepPartial } from "./clients";
export { protobufPackage, protobufFileName, type Exact, type MessageFns } from "../../gen/qod/v1/tenant";

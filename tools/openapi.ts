// Writes the OpenAPI document of the JSON /api (envoy/openapi.json) from a descriptor set
// (envoy/descriptor.binpb), as the gateway builds it. `npm run gen` runs it after `buf build`;
// test/openapi.test.ts runs it to check the committed document is fresh.
//   node --import tsx tools/openapi.ts [descriptor.binpb] [openapi.json]
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { buildOpenApi, renderOpenApi } from "../src/gateway/openapi";
import { buildRoutes, gatewayServices } from "../src/gateway/routes";
import { loadRegistry } from "../src/gateway/transcode";
import { PACKAGE_ROOT } from "../src/package-root";

const [descriptor = path.join(PACKAGE_ROOT, "envoy", "descriptor.binpb"), output = path.join(PACKAGE_ROOT, "envoy", "openapi.json")] = process.argv.slice(2);
const registry = loadRegistry(readFileSync(descriptor));
const { routes } = buildRoutes(registry, gatewayServices(registry));
writeFileSync(output, renderOpenApi(buildOpenApi(registry, routes)));

// Server reflection fed with buf's descriptor bytes verbatim. (Re-serialising them through
// proto-loader loses imports and map entry names, which breaks `buf curl`.)
import { readFileSync } from "node:fs";
import path from "node:path";
import type { Server } from "@grpc/grpc-js";
import type { PackageDefinition } from "@grpc/proto-loader";
import { ReflectionService } from "@grpc/reflection";
import { PACKAGE_ROOT } from "../package-root";
import { fromBinary, toBinary } from "@bufbuild/protobuf";
import { FileDescriptorSetSchema, FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";

/** The descriptor set `npm run gen` builds; Envoy's transcoder reads the same file. */
export const DESCRIPTOR_PATH = path.join(PACKAGE_ROOT, "envoy", "descriptor.binpb");

export function readDescriptor(): Buffer {
  return readFileSync(DESCRIPTOR_PATH);
}

export function addReflection(server: Server, descriptor: Uint8Array): void {
  const set = fromBinary(FileDescriptorSetSchema, descriptor);
  const fileDescriptorProtos = set.file.map((file) => toBinary(FileDescriptorProtoSchema, file));
  // @grpc/reflection only reads `fileDescriptorProtos` of the package definition's entries.
  const definition = {
    __descriptor_set__: { format: "Protocol Buffer 3 DescriptorProto", type: {}, fileDescriptorProtos },
  } as unknown as PackageDefinition;
  new ReflectionService(definition).addToServer(server);
}

// Baseline B1: a bare grpc-js server with the service's server options and a no-op unary
// handler on the same method path as GetTenant. It neither decodes the request nor encodes a
// response: it answers fixed bytes (a real GetTenant response, so the wire carries the same
// sizes both ways). What it measures is grpc-js and HTTP/2 on this machine, nothing of ours.
//
//   node --import tsx bench/servers/bare-grpc.ts <host> <port> <response bytes, base64>
// Prints "listening <port>" once bound; stops on SIGTERM/SIGINT.
import { Server, ServerCredentials, type sendUnaryData, type ServerUnaryCall } from "@grpc/grpc-js";
import { GRPC_SERVER_OPTIONS } from "../../src/server/grpc";

const [host = "127.0.0.1", portArg = "0", responseB64 = ""] = process.argv.slice(2);
const response = Buffer.from(responseB64, "base64");
const identity = (bytes: Buffer) => bytes;

const server = new Server(GRPC_SERVER_OPTIONS);
server.addService(
  {
    getTenant: {
      path: "/qod.v1.TenantService/GetTenant",
      requestStream: false,
      responseStream: false,
      requestSerialize: identity,
      requestDeserialize: identity,
      responseSerialize: identity,
      responseDeserialize: identity,
    },
  },
  {
    getTenant: (_call: ServerUnaryCall<Buffer, Buffer>, callback: sendUnaryData<Buffer>) => callback(null, response),
  },
);

server.bindAsync(`${host}:${portArg}`, ServerCredentials.createInsecure(), (err, port) => {
  if (err) {
    process.stderr.write(`bare-grpc: ${err.message}\n`);
    process.exit(1);
  }
  process.stdout.write(`listening ${port}\n`);
});

const stop = () => server.tryShutdown(() => process.exit(0));
process.on("SIGTERM", stop);
process.on("SIGINT", stop);

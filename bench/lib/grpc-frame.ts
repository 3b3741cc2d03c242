// The gRPC wire framing of a unary message: a zero compression flag, a 4-byte big-endian length,
// then the protobuf bytes. Load generators send these bytes as the request body.

export function grpcFrame(message: Uint8Array): Buffer {
  const frame = Buffer.alloc(5 + message.length);
  frame.writeUInt8(0, 0);
  frame.writeUInt32BE(message.length, 1);
  frame.set(message, 5);
  return frame;
}


// A minimal Postgres client for holding thousands of idle sessions: startup and SCRAM-SHA-256
// over a raw socket, then nothing. The PBKDF2 step is done once per salt, not per connection,
// so opening 5,000 sessions costs the generator little (psql or node-postgres would redo it each time).
import { createHash, createHmac, pbkdf2Sync, randomBytes } from "node:crypto";
import { connect, type Socket } from "node:net";

const salted = new Map<string, Buffer>();

function saltedPassword(password: string, salt: string, iterations: number): Buffer {
  const key = `${salt}:${iterations}`;
  let value = salted.get(key);
  if (!value) salted.set(key, (value = pbkdf2Sync(password, Buffer.from(salt, "base64"), iterations, 32, "sha256")));
  return value;
}

function message(type: string, body: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.write(type, 0, "latin1");
  head.writeUInt32BE(body.length + 4, 1);
  return Buffer.concat([head, body]);
}

/** Opens a session and resolves once it is ready for queries; the socket stays open and idle. */
export function openIdleSession(options: { host: string; port: number; user: string; database: string; password: string }): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: options.host, port: options.port });
    const clientNonce = randomBytes(18).toString("base64");
    const clientFirstBare = `n=*,r=${clientNonce}`;
    let buffer = Buffer.alloc(0);
    let authMessage = "";
    socket.on("error", reject);
    socket.on("close", () => reject(new Error("closed during login")));
    socket.on("data", (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      while (buffer.length >= 5) {
        const length = buffer.readUInt32BE(1);
        if (buffer.length < length + 1) return;
        const type = String.fromCharCode(buffer[0]);
        const body = buffer.subarray(5, length + 1);
        buffer = buffer.subarray(length + 1);
        if (type === "E") return reject(new Error(`refused: ${body.toString("utf8").replace(/\0/g, " ")}`));
        if (type === "Z") {
          socket.removeAllListeners("data");
          socket.removeAllListeners("close");
          socket.resume();
          return resolve(socket);
        }
        if (type !== "R") continue;
        const code = body.readInt32BE(0);
        if (code === 10) {
          const first = Buffer.from(`n,,${clientFirstBare}`);
          const len = Buffer.alloc(4);
          len.writeInt32BE(first.length);
          socket.write(message("p", Buffer.concat([Buffer.from("SCRAM-SHA-256\0"), len, first])));
        } else if (code === 11) {
          const serverFirst = body.subarray(4).toString("utf8");
          const attrs = Object.fromEntries(serverFirst.split(",").map((a) => [a[0], a.slice(2)]));
          const withoutProof = `c=biws,r=${attrs.r}`;
          authMessage = `${clientFirstBare},${serverFirst},${withoutProof}`;
          const clientKey = createHmac("sha256", saltedPassword(options.password, attrs.s, Number(attrs.i))).update("Client Key").digest();
          const storedKey = createHash("sha256").update(clientKey).digest();
          const signature = createHmac("sha256", storedKey).update(authMessage).digest();
          for (let i = 0; i < 32; i++) clientKey[i] ^= signature[i];
          socket.write(message("p", Buffer.from(`${withoutProof},p=${clientKey.toString("base64")}`)));
        }
      }
    });
    const params = Buffer.from(`user\0${options.user}\0database\0${options.database}\0\0`);
    const startup = Buffer.alloc(8);
    startup.writeUInt32BE(params.length + 8, 0);
    startup.writeUInt32BE(196608, 4);
    socket.write(Buffer.concat([startup, params]));
  });
}

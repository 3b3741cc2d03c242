// The context of one call, made by a transport (grpc-adapter.ts, invoker.ts) from what it knows
// of the call (CallInput).
import type { Metadata } from "@grpc/grpc-js";
import type { Logger } from "pino";
import type { CallContext, Surface } from "../call/context";
import { abortError, cancelled, deadlineExceeded } from "../call/deadline";
import { requestIdOf } from "../call/metadata";
import type { Principal } from "../call/principal";
import type { AppError } from "../errors";

/**
 * What a transport knows of a call, and all its context is made from: grpc-js's ServerUnaryCall
 * for gRPC calls, the HTTP request for the gateway's in-process calls.
 */
export interface CallInput {
  readonly surface: Surface;
  readonly metadata: Metadata;
  /** The client as grpc-js's getPeer() names it: `address:port`, IPv6 without brackets. */
  readonly peer: string;
  /** Epoch milliseconds; undefined when the client set none. */
  readonly deadline: number | undefined;
  /** Has `listener` run when the client cancels the call; returns what removes it again. */
  onCancel(listener: () => void): () => void;
}

/**
 * The context of one call; `done` is called once the handler has settled. A class rather than
 * closures: every call makes one, and its methods live once on the prototype.
 *
 * `signal` aborts with CANCELLED when the client cancels and with DEADLINE_EXCEEDED when the
 * deadline passes. It is made the first time it is read: reads that never look at it (GetTenant)
 * pay for no AbortController, timer or listener. Read later, it is born aborted if the call was
 * cancelled or its deadline has passed, which is what an eager one would show by then.
 *
 * grpc-js (1.14) emits `cancelled` whenever a call's stream closes, also after a call that ended
 * normally (and an HTTP response emits `close` after it is sent), so the listener only lives
 * while the handler runs, and a normal end builds no error.
 */
export class CallState implements CallContext {
  readonly surface: Surface;
  readonly metadata: Metadata;
  readonly peer: string;
  readonly deadline: number | undefined;
  readonly requestId: string;
  principal?: Principal;
  private controller: AbortController | undefined;
  private abortSignal: AbortSignal | undefined;
  private cancelReason: AppError | undefined;
  private timer: NodeJS.Timeout | undefined;
  private logger: Logger | undefined;
  private readonly stopListening: () => void;

  constructor(
    readonly method: string,
    call: CallInput,
    private readonly baseLog: Logger,
  ) {
    this.surface = call.surface;
    this.requestId = requestIdOf(call.metadata);
    this.metadata = call.metadata;
    this.peer = call.peer;
    this.deadline = call.deadline;
    this.stopListening = call.onCancel(() => {
      this.cancelReason = cancelled();
      this.controller?.abort(this.cancelReason);
    });
  }

  get signal(): AbortSignal {
    this.abortSignal ??= this.makeSignal();
    return this.abortSignal;
  }

  get abortReason(): AppError | undefined {
    if (this.abortSignal) return this.abortSignal.aborted ? abortError(this.abortSignal) : undefined;
    // First: at the deadline grpc-js closes the stream, which also reads as a cancel.
    if (this.deadline !== undefined && this.deadline <= Date.now()) return deadlineExceeded();
    return this.cancelReason;
  }

  /** Made on first use: a successful call at the default level logs nothing, and a pino child serialises its bindings when made. */
  get log(): Logger {
    const { requestId, method, principal } = this;
    this.logger ??= this.baseLog.child(principal ? { requestId, method, subject: principal.subject } : { requestId, method });
    return this.logger;
  }

  done(): void {
    this.stopListening();
    if (this.timer !== undefined) clearTimeout(this.timer);
  }

  private makeSignal(): AbortSignal {
    const controller = (this.controller = new AbortController());
    if (this.cancelReason) controller.abort(this.cancelReason);
    else if (this.deadline !== undefined) {
      const remaining = this.deadline - Date.now();
      if (remaining <= 0) controller.abort(deadlineExceeded());
      else this.timer = setTimeout(() => controller.abort(deadlineExceeded()), remaining);
    }
    return controller.signal;
  }
}

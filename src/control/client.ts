// The control socket's client: typed calls to a running agent (krsi policy
// apply, krsi list, krsi explain, krsi stop, and the library API).
import { connect, type Socket } from 'node:net';
import type { AgentStatus, ApplyResult, ListChange, ListView, LoadedPolicySource } from '../agent/control-api.js';
import type { Decision, EventFacts } from '../policy/evaluate.js';
import type { Policy, PolicyInput } from '../policy/schema.js';
import {
  DEFAULT_SOCKET_PATH,
  MAX_RESPONSE_BYTES,
  METHODS,
  ResponseSchema,
  encodeLine,
  formatZodIssues,
  type ErrorBody,
  type ErrorCode,
  type MethodName,
  type MethodResults,
} from './protocol.js';

/** The agent answered with an error. */
export class ControlError extends Error {
  readonly code: ErrorCode;
  readonly details: unknown;

  constructor(body: ErrorBody) {
    super(body.message);
    this.name = 'ControlError';
    this.code = body.code;
    this.details = body.details;
  }
}

/** No agent could be reached: nothing listens on the socket, or the connection failed. */
export class AgentUnavailableError extends Error {
  constructor(
    message: string,
    readonly path: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = 'AgentUnavailableError';
  }
}

export interface StopOutcome {
  pid: number;
  /** The agent closed the connection within the timeout (it does so once it has stopped). */
  stopped: boolean;
}

export interface ControlClient {
  readonly path: string;
  status(): Promise<AgentStatus>;
  /** Replaces the agent's policies with exactly these. */
  applyPolicies(policies: ReadonlyArray<{ policy: Policy | PolicyInput; source: string }>): Promise<ApplyResult>;
  currentPolicies(): Promise<{ generation: number; policies: LoadedPolicySource[] }>;
  /** Every list, or only the one named (a ControlError 'input' when there is none). */
  lists(name?: string): Promise<ListView[]>;
  listAdd(name: string, entries: readonly string[], ttlSeconds?: number): Promise<ListChange>;
  listRemove(name: string, entries: readonly string[]): Promise<ListChange>;
  explain(facts: EventFacts): Promise<Decision>;
  /** Makes the policy in force immutable until reboot. */
  lock(): Promise<{ generation: number }>;
  /** Reaches the lock point (one-way until reboot). */
  reachLockPoint(): Promise<{ reached: boolean; since: string | null; already: boolean }>;
  /** Asks the agent to stop; waits up to timeoutMs (default 30 s) for it to close the connection. */
  stop(opts?: { timeoutMs?: number }): Promise<StopOutcome>;
  /** Any method, by name, with params as the wire takes them. */
  call<M extends MethodName>(method: M, params: unknown): Promise<MethodResults[M]>;
  close(): void;
}

/** Connects to the agent's control socket (KRSI_SOCKET or /run/krsi/krsi.sock unless given). */
export function connectControl(path: string = process.env['KRSI_SOCKET'] || DEFAULT_SOCKET_PATH): Promise<ControlClient> {
  return new Promise((resolve, reject) => {
    const socket = connect(path);
    const onError = (err: NodeJS.ErrnoException): void => {
      socket.destroy();
      reject(connectError(err, path));
    };
    socket.once('error', onError);
    socket.once('connect', () => {
      socket.off('error', onError);
      resolve(new Client(socket, path));
    });
  });
}

function connectError(err: NodeJS.ErrnoException, path: string): Error {
  switch (err.code) {
    case 'ENOENT':
    case 'ECONNREFUSED':
    case 'ENOTSOCK':
      return new AgentUnavailableError(`no krsi agent is running (nothing listens on ${path}); start one with \`krsi run\``, path, { cause: err });
    case 'EACCES':
    case 'EPERM':
      return new ControlError({ code: 'denied', message: `permission denied on ${path}: the krsi control socket is for root only` });
    default:
      return new AgentUnavailableError(`cannot connect to the krsi agent on ${path}: ${err.code ?? ''} ${err.message}`.replace(/ {2,}/g, ' '), path, {
        cause: err,
      });
  }
}

interface Pending {
  method: MethodName;
  resolve: (value: unknown) => void;
  reject: (err: Error) => void;
}

class Client implements ControlClient {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private chunks: Buffer[] = [];
  private size = 0;
  /** Once set, every call fails with it: the connection is unusable. */
  private broken: Error | null = null;
  private readonly closed: Promise<void>;

  constructor(
    private readonly socket: Socket,
    readonly path: string,
  ) {
    socket.unref(); // an idle client keeps nothing alive
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) => this.fail(new AgentUnavailableError(`connection to the krsi agent on ${path} failed: ${err.message}`, path, { cause: err })));
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
    void this.closed.then(() => this.fail(new AgentUnavailableError(`the krsi agent closed the connection on ${path}`, path)));
  }

  status(): Promise<AgentStatus> {
    return this.call('status', {});
  }

  applyPolicies(policies: ReadonlyArray<{ policy: Policy | PolicyInput; source: string }>): Promise<ApplyResult> {
    return this.call('policy.apply', { policies: policies.map((p) => ({ policy: p.policy, source: p.source })) });
  }

  currentPolicies(): Promise<{ generation: number; policies: LoadedPolicySource[] }> {
    return this.call('policy.current', {});
  }

  async lists(name?: string): Promise<ListView[]> {
    return (await this.call('lists.show', name === undefined ? {} : { name })).lists;
  }

  listAdd(name: string, entries: readonly string[], ttlSeconds?: number): Promise<ListChange> {
    return this.call('lists.add', ttlSeconds === undefined ? { name, entries } : { name, entries, ttlSeconds });
  }

  listRemove(name: string, entries: readonly string[]): Promise<ListChange> {
    return this.call('lists.remove', { name, entries });
  }

  explain(facts: EventFacts): Promise<Decision> {
    return this.call('explain', { facts });
  }

  lock(): Promise<{ generation: number }> {
    return this.call('lock', {});
  }

  reachLockPoint(): Promise<{ reached: boolean; since: string | null; already: boolean }> {
    return this.call('lockpoint.reach', {});
  }

  async stop(opts: { timeoutMs?: number } = {}): Promise<StopOutcome> {
    const { pid } = await this.call('stop', {});
    this.socket.ref();
    let timer: NodeJS.Timeout | undefined;
    const stopped = await Promise.race([
      this.closed.then(() => true),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), opts.timeoutMs ?? 30_000);
      }),
    ]);
    clearTimeout(timer);
    this.close();
    return { pid, stopped };
  }

  call<M extends MethodName>(method: M, params: unknown): Promise<MethodResults[M]> {
    if (this.broken) return Promise.reject(this.broken);
    const id = this.nextId++;
    return new Promise<MethodResults[M]>((resolve, reject) => {
      this.pending.set(id, { method, resolve: resolve as (value: unknown) => void, reject });
      this.socket.ref();
      this.socket.write(encodeLine({ id, method, params }));
    });
  }

  close(): void {
    this.socket.destroy();
  }

  private fail(err: Error): void {
    this.broken ??= err;
    const pending = [...this.pending.values()];
    this.pending.clear();
    for (const p of pending) p.reject(this.broken);
    this.socket.unref();
  }

  private onData(chunk: Buffer): void {
    let start = 0;
    while (start < chunk.length) {
      const nl = chunk.indexOf(0x0a, start);
      const part = chunk.subarray(start, nl === -1 ? chunk.length : nl);
      this.size += part.length;
      if (this.size > MAX_RESPONSE_BYTES) {
        this.fail(new ControlError({ code: 'internal', message: `the agent's answer is longer than ${MAX_RESPONSE_BYTES} bytes` }));
        this.socket.destroy();
        return;
      }
      this.chunks.push(part);
      if (nl === -1) break;
      const line = Buffer.concat(this.chunks, this.size).toString('utf8');
      this.chunks = [];
      this.size = 0;
      start = nl + 1;
      if (line.trim() !== '') this.onLine(line);
    }
  }

  private onLine(line: string): void {
    let json: unknown;
    try {
      json = JSON.parse(line);
    } catch {
      this.fail(new ControlError({ code: 'internal', message: 'the agent answered with something that is not JSON' }));
      this.socket.destroy();
      return;
    }
    const response = ResponseSchema.safeParse(json);
    if (!response.success) {
      this.fail(new ControlError({ code: 'internal', message: `the agent's answer is malformed: ${formatZodIssues(response.error.issues)}` }));
      this.socket.destroy();
      return;
    }
    const r = response.data;
    if (r.id === null) {
      // About no request of ours (we send no garbage): the connection as a whole, e.g. denied.
      const body = 'error' in r ? r.error : { code: 'internal' as const, message: 'the agent answered a request that was not made' };
      this.fail(new ControlError(body as ErrorBody));
      return;
    }
    const pending = this.pending.get(r.id);
    if (!pending) return; // an answer to a call that has already failed
    this.pending.delete(r.id);
    if (this.pending.size === 0) this.socket.unref();
    if ('error' in r) {
      pending.reject(new ControlError(r.error as ErrorBody));
      return;
    }
    const result = METHODS[pending.method].result.safeParse(r.result);
    if (!result.success) {
      pending.reject(
        new ControlError({
          code: 'internal',
          message: `the agent answered ${pending.method} with an unexpected result (is it another krsi version?): ${formatZodIssues(result.error.issues, 3)}`,
        }),
      );
      return;
    }
    pending.resolve(result.data);
  }
}

// The control socket's server, in the agent: accepts connections from root
// (and from the agent's own uid) on a Unix socket, reads newline-delimited
// JSON requests and answers each, in order, by calling the AgentControl.
//
// Nothing a client does can bring the agent down: garbage, oversize lines,
// abrupt closes and clients that never read their answers each cost the
// client its own connection at most.
import { chmod, lstat, mkdir, unlink } from 'node:fs/promises';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { dirname } from 'node:path';
import type { Logger } from 'pino';
import type { AgentControl, ApplyResult } from '../agent/control-api.js';
import type { EventHub } from '../ops/event-hub.js';
import { InputError } from '../errors.js';
import { log as defaultLog } from '../log.js';
import { socketPeerCredentials, type PeerCredentials } from '../system/peer-credentials.js';
import {
  DEFAULT_SOCKET_PATH,
  MAX_REQUEST_BYTES,
  METHODS,
  RequestSchema,
  encodeLine,
  formatZodIssues,
  isMethodName,
  policyToWire,
  type ErrorCode,
  type MethodName,
  type MethodParams,
  type Response,
} from './protocol.js';

export interface ControlServerOptions {
  /** The socket; /run/krsi/krsi.sock by default. */
  path?: string;
  /** Where refusals and failures are logged; the agent's logger by default. */
  logger?: Logger;
  /** A client that takes no part of an answer for this long is disconnected. */
  stallTimeoutMs?: number;
  /** Where events.subscribe subscribes (absent: the method is refused). */
  events?: EventHub;
  /** What the reload method does: load the policy files again and apply them (absent: refused). */
  reload?: () => Promise<ApplyResult>;
}

export interface ControlServer {
  readonly path: string;
  /** Stops accepting, lets answers being written finish (briefly), closes every connection and removes the socket. */
  close(): Promise<void>;
}

/** The control socket could not be set up; nothing was changed. */
export class ControlServerError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'ControlServerError';
  }
}

/** Requests read ahead of the one being answered before the connection stops reading. */
const MAX_QUEUED_REQUESTS = 32;
const MAX_CONNECTIONS = 64;
const PROBE_TIMEOUT_MS = 1000;
const CLOSE_GRACE_MS = 1000;
const DENIED_LINGER_MS = 1000;

export async function startControlServer(control: AgentControl, opts: ControlServerOptions = {}): Promise<ControlServer> {
  const path = opts.path ?? DEFAULT_SOCKET_PATH;
  const logger = opts.logger ?? defaultLog;
  const stallTimeoutMs = opts.stallTimeoutMs ?? 60_000;

  await ensureDirectory(dirname(path));
  await removeStaleSocket(path);

  const connections = new Set<Connection>();
  const ownUid = process.getuid?.() ?? 0;
  const server = createServer({ allowHalfOpen: true, pauseOnConnect: false });
  server.maxConnections = MAX_CONNECTIONS;
  server.on('connection', (socket: Socket) => {
    let peer: PeerCredentials;
    try {
      peer = socketPeerCredentials(socket);
    } catch (err) {
      logger.warn({ err }, 'control connection closed: cannot read its peer credentials');
      socket.destroy();
      return;
    }
    socket.on('error', (err) => logger.debug({ err, peer }, 'control connection error'));
    if (peer.uid !== 0 && peer.uid !== ownUid) {
      logger.warn({ peer }, 'control connection refused: only root may use the control socket');
      const message = `the krsi control socket serves root only (you are uid ${peer.uid})`;
      socket.resume(); // whatever the peer sends is dropped
      socket.end(encodeLine({ id: null, error: { code: 'denied', message } } satisfies Response));
      setTimeout(() => socket.destroy(), DENIED_LINGER_MS).unref();
      return;
    }
    logger.debug({ peer }, 'control connection');
    const connection = new Connection(socket, control, logger, stallTimeoutMs, peer, opts);
    connections.add(connection);
    socket.once('close', () => connections.delete(connection));
  });
  server.on('error', (err) => logger.error({ err, path }, 'control socket error'));

  await listen(server, path);
  try {
    await chmod(path, 0o600);
  } catch (err) {
    server.close();
    throw new ControlServerError(`cannot restrict the control socket ${path} to root: ${errnoMessage(err)}`, { cause: err });
  }
  logger.debug({ path }, 'control socket listening');

  let closing: Promise<void> | undefined;
  return {
    path,
    close: () => {
      closing ??= new Promise<void>((resolve) => {
        const done = new Promise<void>((r) => server.close(() => r()));
        for (const c of connections) c.shutdown();
        const timer = setTimeout(() => {
          for (const c of connections) c.destroy();
        }, CLOSE_GRACE_MS);
        timer.unref();
        void done.then(() => {
          clearTimeout(timer);
          resolve();
        });
      });
      return closing;
    },
  };
}

async function ensureDirectory(dir: string): Promise<void> {
  try {
    const created = await mkdir(dir, { recursive: true, mode: 0o700 });
    // The umask may have taken bits away, never added; chmod makes it exact.
    if (created !== undefined) await chmod(dir, 0o700);
  } catch (err) {
    throw new ControlServerError(`cannot create the control socket's directory ${dir}: ${errnoMessage(err)}`, { cause: err });
  }
}

/** Removes a socket file nothing listens on; refuses when something does, or when the path is not a socket. */
async function removeStaleSocket(path: string): Promise<void> {
  let info;
  try {
    info = await lstat(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw new ControlServerError(`cannot check the control socket ${path}: ${errnoMessage(err)}`, { cause: err });
  }
  if (!info.isSocket()) {
    throw new ControlServerError(`${path} exists and is not a socket; remove it or choose another control socket path`);
  }
  const answer = await probe(path);
  if (answer === 'listening') {
    throw new ControlServerError(`another agent listens on ${path}; stop it first (krsi stop), or choose another control socket path`);
  }
  if (answer === 'stale') {
    try {
      await unlink(path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
        throw new ControlServerError(`cannot remove the stale control socket ${path}: ${errnoMessage(err)}`, { cause: err });
      }
    }
  }
}

function probe(path: string): Promise<'listening' | 'stale' | 'gone'> {
  return new Promise((resolve) => {
    const socket = connect(path);
    const finish = (answer: 'listening' | 'stale' | 'gone'): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(answer);
    };
    // A listener too busy to accept within the timeout is still a listener.
    const timer = setTimeout(() => finish('listening'), PROBE_TIMEOUT_MS);
    socket.once('connect', () => finish('listening'));
    socket.once('error', (err: NodeJS.ErrnoException) => {
      finish(err.code === 'ENOENT' ? 'gone' : err.code === 'ECONNREFUSED' ? 'stale' : 'listening');
    });
  });
}

function listen(server: Server, path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      reject(
        new ControlServerError(
          err.code === 'EADDRINUSE' ? `another agent listens on ${path}` : `cannot listen on ${path}: ${errnoMessage(err)}`,
          { cause: err },
        ),
      );
    };
    server.once('error', onError);
    // bind() creates the socket file; with this umask it is never, even for
    // an instant, accessible to anyone but its owner. (listen() binds synchronously.)
    let umask: number | undefined;
    try {
      umask = process.umask(0o177);
    } catch {
      // Worker threads cannot change the umask: there, the directory's 0700 and the chmod below have to do.
    }
    try {
      server.listen(path, () => {
        server.off('error', onError);
        resolve();
      });
    } finally {
      if (umask !== undefined) process.umask(umask);
    }
  });
}

function errnoMessage(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  return e.code ? `${e.code} (${e.message})` : e instanceof Error ? e.message : String(err);
}

type Item = Buffer | 'oversize';

interface Answer {
  response: Response | null;
  /** Runs once the response is handed to the kernel. */
  after?: () => void;
}

/** One client: splits its bytes into lines, answers them one after another. */
class Connection {
  private readonly chunks: Buffer[] = [];
  private size = 0;
  /** Dropping the rest of an oversize line, up to its newline. */
  private discarding = false;
  private readonly queue: Item[] = [];
  private busy = false;
  private peerEnded = false;
  private closing = false;

  constructor(
    private readonly socket: Socket,
    private readonly control: AgentControl,
    private readonly logger: Logger,
    private readonly stallTimeoutMs: number,
    private readonly peer: PeerCredentials,
    private readonly ops: Pick<ControlServerOptions, 'events' | 'reload'> = {},
  ) {
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('end', () => {
      this.peerEnded = true;
      this.endIfIdle();
    });
    socket.on('close', () => {
      this.queue.length = 0;
      this.chunks.length = 0;
    });
  }

  /** The server is closing: answer the request being answered, if any, then end. */
  shutdown(): void {
    this.closing = true;
    this.queue.length = 0;
    this.socket.pause();
    this.endIfIdle();
  }

  destroy(): void {
    this.socket.destroy();
  }

  private endIfIdle(): void {
    if (!this.busy && this.queue.length === 0 && (this.peerEnded || this.closing) && !this.socket.destroyed) {
      this.socket.end();
      // A peer that never closes its side is not waited for.
      setTimeout(() => this.socket.destroy(), DENIED_LINGER_MS).unref();
    }
  }

  private onData(chunk: Buffer): void {
    if (this.closing) return;
    let start = 0;
    while (start < chunk.length) {
      const nl = chunk.indexOf(0x0a, start);
      if (nl === -1) {
        this.append(chunk.subarray(start));
        break;
      }
      if (this.discarding) {
        this.discarding = false;
      } else {
        this.append(chunk.subarray(start, nl));
        if (!this.discarding) this.queue.push(Buffer.concat(this.chunks, this.size));
        this.discarding = false;
      }
      this.chunks.length = 0;
      this.size = 0;
      start = nl + 1;
    }
    if (this.queue.length >= MAX_QUEUED_REQUESTS) this.socket.pause();
    void this.pump();
  }

  /** Adds part of a line; past the limit, the line is refused once and the rest of it dropped. */
  private append(part: Buffer): void {
    if (this.discarding || part.length === 0) return;
    this.size += part.length;
    if (this.size > MAX_REQUEST_BYTES) {
      this.chunks.length = 0;
      this.size = 0;
      this.discarding = true;
      this.queue.push('oversize');
      return;
    }
    this.chunks.push(part);
  }

  private async pump(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      while (this.queue.length > 0 && !this.socket.destroyed) {
        const item = this.queue.shift() as Item;
        if (this.queue.length < MAX_QUEUED_REQUESTS / 2 && this.socket.isPaused() && !this.closing) this.socket.resume();
        const answer = await this.answer(item);
        if (answer.response) await this.write(encodeLine(answer.response));
        answer.after?.();
      }
    } catch (err) {
      this.logger.error({ err, peer: this.peer }, 'control connection failed');
      this.socket.destroy();
    } finally {
      this.busy = false;
    }
    if (!this.closing && this.socket.isPaused() && !this.socket.destroyed) this.socket.resume();
    this.endIfIdle();
  }

  /** Writes one response; resolves once it is handed to the kernel, or the connection is gone. */
  private write(text: string): Promise<void> {
    const socket = this.socket;
    if (socket.destroyed || !socket.writable) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.logger.warn({ peer: this.peer }, 'control connection closed: the client does not read its answers');
        socket.destroy();
      }, this.stallTimeoutMs);
      timer.unref();
      const done = (): void => {
        clearTimeout(timer);
        socket.off('close', done);
        resolve();
      };
      socket.once('close', done);
      socket.write(text, done);
    });
  }

  private async answer(item: Item): Promise<Answer> {
    const fail = (id: number | null, code: ErrorCode, message: string, details?: unknown): Answer => ({
      response: { id, error: details === undefined ? { code, message } : { code, message, details } },
    });
    if (item === 'oversize') return fail(null, 'input', `request line longer than ${MAX_REQUEST_BYTES} bytes; refused`);
    const text = item.toString('utf8').trim();
    if (text === '') return { response: null };
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (err) {
      return fail(null, 'input', `malformed request: not JSON (${err instanceof Error ? err.message : String(err)})`);
    }
    const rawId = (json as { id?: unknown } | null)?.id;
    const id = typeof rawId === 'number' && Number.isSafeInteger(rawId) && rawId >= 0 ? rawId : null;
    const request = RequestSchema.safeParse(json);
    if (!request.success) {
      return fail(id, 'input', `malformed request: ${formatZodIssues(request.error.issues)} (expected {"id": <number>, "method": <string>, "params": {...}})`);
    }
    const { method } = request.data;
    if (!isMethodName(method)) {
      return fail(request.data.id, 'unknown-method', `unknown method ${JSON.stringify(method.slice(0, 64))}; the agent knows ${Object.keys(METHODS).join(', ')}`);
    }
    const params = METHODS[method].params.safeParse(request.data.params);
    if (!params.success) {
      const issues = params.error.issues.slice(0, 50).map((i) => ({ path: i.path.map(String), message: i.message }));
      return fail(request.data.id, 'input', `invalid params for ${method}: ${formatZodIssues(params.error.issues)}`, { issues });
    }
    try {
      const { result, after } = await this.dispatch(method, params.data);
      return after ? { response: { id: request.data.id, result }, after } : { response: { id: request.data.id, result } };
    } catch (err) {
      if (err instanceof InputError) return fail(request.data.id, 'input', err.message);
      this.logger.error({ err, method, peer: this.peer }, 'control request failed');
      return fail(request.data.id, 'internal', err instanceof Error ? err.message : String(err));
    }
  }

  private async dispatch(method: MethodName, params: unknown): Promise<{ result: unknown; after?: () => void }> {
    const c = this.control;
    switch (method) {
      case 'status':
        return { result: await c.status() };
      case 'policy.apply': {
        const p = params as MethodParams<'policy.apply'>;
        this.logger.info({ peer: this.peer, policies: p.policies.map((x) => x.policy.metadata.name) }, 'applying policies from the control socket');
        return { result: await c.applyPolicies(p.policies) };
      }
      case 'policy.current': {
        const current = await c.currentPolicies();
        return { result: { generation: current.generation, policies: current.policies.map((p) => ({ policy: policyToWire(p.policy), source: p.source })) } };
      }
      case 'lists.show': {
        const p = params as MethodParams<'lists.show'>;
        const all = await c.lists();
        if (p.name === undefined) return { result: { lists: all } };
        const lists = all.filter((l) => l.name === p.name);
        if (lists.length === 0) {
          throw new InputError(`no list named ${p.name}${all.length ? `; the lists are ${all.map((l) => l.name).join(', ')}` : '; no policy declares a list'}`);
        }
        return { result: { lists } };
      }
      case 'lists.add': {
        const p = params as MethodParams<'lists.add'>;
        return { result: await c.listAdd(p.name, p.entries, p.ttlSeconds) };
      }
      case 'lists.remove': {
        const p = params as MethodParams<'lists.remove'>;
        return { result: await c.listRemove(p.name, p.entries) };
      }
      case 'explain': {
        const p = params as MethodParams<'explain'>;
        return { result: await c.explain(p.facts) };
      }
      case 'lock': {
        this.logger.warn({ peer: this.peer }, 'policy locked until reboot from the control socket');
        return { result: await c.lock() };
      }
      case 'lockpoint.reach': {
        this.logger.info({ peer: this.peer }, 'lock point requested on the control socket');
        return { result: await c.reachLockPoint() };
      }
      case 'events.subscribe': {
        const p = params as MethodParams<'events.subscribe'>;
        const hub = this.ops.events;
        if (!hub) throw new InputError('this agent serves no event subscriptions');
        this.logger.info({ peer: this.peer, filter: p.filter }, 'event subscription');
        // Answered first; then the stream, on this connection, until it closes.
        const after = (): void => {
          if (this.socket.destroyed) return;
          const socket = this.socket;
          const sub = hub.subscribe(p.filter, { pending: () => socket.writableLength, write: (line) => void (socket.writable && socket.write(line)) }, p.backlog);
          socket.once('close', () => sub.close());
        };
        return { result: { subscribed: true }, after };
      }
      case 'reload': {
        if (!this.ops.reload) throw new InputError('this agent has no policy files to reload (it was started without --policy)');
        this.logger.info({ peer: this.peer }, 'policy reload requested on the control socket');
        return { result: await this.ops.reload() };
      }
      case 'stop': {
        this.logger.info({ peer: this.peer }, 'stop requested on the control socket');
        // Answered first: stopping closes this socket.
        const after = (): void => {
          setImmediate(() => {
            Promise.resolve()
              .then(() => c.stop())
              .catch((err: unknown) => this.logger.error({ err }, 'stopping the agent failed'));
          });
        };
        return { result: { stopping: true, pid: process.pid }, after };
      }
    }
  }
}

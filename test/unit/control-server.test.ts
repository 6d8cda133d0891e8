// The control socket: the wire protocol, the server's defences (peer
// credentials, garbage, oversize lines, abrupt and slow clients, stale and
// busy socket paths) and the client, against an in-memory AgentControl.
// Runs as root: the non-root peer is a child process with uid 65534.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmod, lstat, mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { pino, type Logger } from 'pino';
import { AgentUnavailableError, connectControl, ControlError } from '../../src/control/client.js';
import { MAX_REQUEST_BYTES } from '../../src/control/protocol.js';
import { startControlServer } from '../../src/control/server.js';
import { definePolicy } from '../../src/policy/define.js';
import { FakeControl } from '../lib/fake-control.js';

let root: string;
before(async () => {
  root = await mkdtemp(join(tmpdir(), 'krsi-control-'));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

let serial = 0;
/** A fresh socket path in a directory that does not exist yet. */
const socketPath = (): string => join(root, `s${++serial}`, 'krsi.sock');

function capturingLogger(): { logger: Logger; entries: Array<Record<string, unknown>> } {
  const entries: Array<Record<string, unknown>> = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => void entries.push(JSON.parse(line) as Record<string, unknown>) });
  return { logger, entries };
}

async function serve(control = new FakeControl(), extra: { stallTimeoutMs?: number } = {}) {
  const path = socketPath();
  const { logger, entries } = capturingLogger();
  const server = await startControlServer(control, { path, logger, ...extra });
  return { path, server, control, logs: entries };
}

/** A raw connection: write lines, read response lines. */
class Raw {
  private buffer = '';
  private readonly lines: string[] = [];
  private waiters: Array<() => void> = [];
  readonly closed: Promise<void>;

  private constructor(readonly socket: Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => {
      this.buffer += d;
      let nl;
      while ((nl = this.buffer.indexOf('\n')) !== -1) {
        this.lines.push(this.buffer.slice(0, nl));
        this.buffer = this.buffer.slice(nl + 1);
      }
      for (const w of this.waiters.splice(0)) w();
    });
    socket.on('error', () => {});
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
    void this.closed.then(() => {
      for (const w of this.waiters.splice(0)) w();
    });
  }

  static open(path: string): Promise<Raw> {
    return new Promise((resolve, reject) => {
      const s = connect(path);
      s.once('connect', () => resolve(new Raw(s)));
      s.once('error', reject);
    });
  }

  send(text: string | Buffer): void {
    this.socket.write(text);
  }

  async read(n: number, timeoutMs = 5000): Promise<Array<Record<string, unknown>>> {
    const deadline = Date.now() + timeoutMs;
    while (this.lines.length < n) {
      if (this.socket.destroyed && this.lines.length < n) throw new Error(`connection closed after ${this.lines.length} of ${n} lines`);
      if (Date.now() > deadline) throw new Error(`timed out after ${this.lines.length} of ${n} lines`);
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 50);
      });
    }
    return this.lines.splice(0, n).map((l) => JSON.parse(l) as Record<string, unknown>);
  }

  close(): void {
    this.socket.destroy();
  }
}

const egress = definePolicy({
  apiVersion: 'krsi.dev/v1',
  kind: 'Policy',
  metadata: { name: 'egress' },
  spec: {
    lists: [{ name: 'blocked', type: 'address', entries: ['203.0.113.7'] }],
    rules: [
      { name: 'deny-blocked', hook: 'connect', match: { address: { list: ['blocked'] } }, action: 'deny' },
      { name: 'deny-tmp', hook: 'exec', match: { binary: { prefix: ['/tmp/'], inode: [{ dev: '8:1', ino: '18446744073709551615' }] } }, action: 'deny' },
    ],
  },
});

test('the socket directory is created 0700 and the socket is 0600', async () => {
  const { path, server } = await serve();
  try {
    assert.equal((await stat(join(path, '..'))).mode & 0o777, 0o700);
    const info = await lstat(path);
    assert.ok(info.isSocket());
    assert.equal(info.mode & 0o777, 0o600);
  } finally {
    await server.close();
  }
  await assert.rejects(lstat(path), { code: 'ENOENT' }, 'close() removes the socket');
});

test('the client round-trips every method', async () => {
  const { path, server, control } = await serve();
  const client = await connectControl(path);
  try {
    const status = await client.status();
    assert.equal(status.pid, process.pid);
    assert.equal(status.kernel, '6.12.0-test');

    const applied = await client.applyPolicies([{ policy: egress, source: '/etc/krsi/egress.yaml' }]);
    assert.deepEqual(applied, { generation: 1, compileMs: 1.25, swapMs: 0.5, rules: 2, entries: 1 });
    // The agent got a Policy, 64-bit numbers as bigints again.
    assert.deepEqual(control.policies[0]?.policy, egress);

    const current = await client.currentPolicies();
    assert.equal(current.generation, 1);
    assert.deepEqual(current.policies, [{ policy: egress, source: '/etc/krsi/egress.yaml' }]);
    assert.equal(current.policies[0]?.policy.spec.rules[1]?.match.binary?.inode?.[0]?.ino, 18446744073709551615n);

    assert.deepEqual(await client.lists(), [{ name: 'blocked', type: 'address', id: 1, entries: [{ entry: '203.0.113.7' }] }]);
    assert.deepEqual(await client.lists('blocked'), await client.lists());
    await assert.rejects(client.lists('nope'), (err: unknown) => err instanceof ControlError && err.code === 'input' && /no list named nope/.test(err.message));

    assert.deepEqual(await client.listAdd('blocked', ['198.51.100.1', '203.0.113.7'], 600), {
      list: 'blocked',
      added: ['198.51.100.1'],
      removed: [],
      unchanged: ['203.0.113.7'],
    });
    const [blocked] = await client.lists('blocked');
    assert.match(blocked?.entries[1]?.expires ?? '', /^\d{4}-\d\d-\d\dT/);
    assert.deepEqual(await client.listRemove('blocked', ['198.51.100.1', '192.0.2.1']), {
      list: 'blocked',
      added: [],
      removed: ['198.51.100.1'],
      unchanged: ['192.0.2.1'],
    });

    const decision = await client.explain({ hook: 'connect', address: '203.0.113.7', port: 443, uid: 1000, cgroups: [2n ** 63n] });
    assert.equal(decision.verdict, 'deny');
    assert.deepEqual(decision.decidedBy, { policy: 'egress', rule: 'deny-blocked', action: 'deny', mode: 'enforce' });
    assert.deepEqual(control.lastFacts, { hook: 'connect', address: '203.0.113.7', port: 443, uid: 1000, cgroups: [2n ** 63n] });
    const exec = await client.explain({ hook: 'exec', binary: { path: '/usr/bin/ls', dev: '8:1', ino: 18446744073709551615n } });
    assert.equal(exec.verdict, 'deny', 'the inode matched: the bigint survived the wire both ways');

    let stopped!: () => void;
    const stopCalled = new Promise<void>((r) => (stopped = r));
    control.onStop = async () => {
      stopped();
      await server.close();
    };
    assert.deepEqual(await client.stop({ timeoutMs: 5000 }), { pid: process.pid, stopped: true });
    await stopCalled;
    assert.equal(control.stops, 1);
  } finally {
    client.close();
    await server.close();
  }
});

test('input errors and agent failures come back as such, and the agent failure is logged', async () => {
  const { path, server, control, logs } = await serve();
  const client = await connectControl(path);
  try {
    // Not a policy: refused by the protocol, before the agent is called.
    await assert.rejects(
      client.call('policy.apply', {
        policies: [{ policy: { apiVersion: 'krsi.dev/v1', kind: 'Policy', metadata: { name: 'x' }, spec: { rules: [{ name: 'r', hook: 'exec', action: 'nuke' }] } }, source: 'a.yaml' }],
      }),
      (err: unknown) => err instanceof ControlError && err.code === 'input' && /a\.yaml: policy x rule r at spec\.rules\.0\.action/.test(err.message),
    );
    assert.ok(!control.calls.includes('applyPolicies'));
    // The agent's own InputError (here: two policies with one name).
    await assert.rejects(
      client.applyPolicies([
        { policy: egress, source: 'a.yaml' },
        { policy: egress, source: 'b.yaml' },
      ]),
      (err: unknown) => err instanceof ControlError && err.code === 'input' && /another policy is named egress/.test(err.message),
    );
    assert.equal(control.generation, 0);
    await assert.rejects(client.explain({ hook: 'exec', uid: -1 } as never), (err: unknown) => err instanceof ControlError && err.code === 'input');
    await assert.rejects(client.listAdd('x', []), (err: unknown) => err instanceof ControlError && err.code === 'input');

    control.statusFailure = new Error('map lookup failed');
    await assert.rejects(client.status(), (err: unknown) => err instanceof ControlError && err.code === 'internal' && err.message === 'map lookup failed');
    assert.ok(logs.some((l) => l['level'] === 50 && l['method'] === 'status'), 'the failure is logged as an error');
    control.statusFailure = undefined;
    assert.equal((await client.status()).generation, 0, 'the connection is still usable');
  } finally {
    client.close();
    await server.close();
  }
});

test('garbage gets error responses, and the connection keeps working, in order', async () => {
  const { path, server } = await serve();
  const raw = await Raw.open(path);
  try {
    raw.send(
      [
        'this is not json',
        '{"id": 1}',
        '{"id": 2, "method": "no.such", "params": {}}',
        '{"id": 3, "method": "status", "params": {"verbose": true}}',
        '',
        '[1, 2, 3]',
        '{"id": 4, "method": "status", "params": {}}',
        '{"id": 5, "method": "status"}',
      ].join('\n') + '\n',
    );
    const r = await raw.read(7);
    assert.deepEqual(
      r.map((x) => [x['id'], (x['error'] as { code?: string } | undefined)?.code ?? 'ok']),
      [
        [null, 'input'],
        [1, 'input'],
        [2, 'unknown-method'],
        [3, 'input'],
        [null, 'input'],
        [4, 'ok'],
        [5, 'ok'],
      ],
    );
    assert.match((r[0]?.['error'] as { message: string }).message, /not JSON/);
    assert.match((r[2]?.['error'] as { message: string }).message, /unknown method "no.such"; the agent knows status, policy.apply/);
  } finally {
    raw.close();
    await server.close();
  }
});

test('a request line over 16 MiB is refused, and the next request is answered', async () => {
  const { path, server } = await serve();
  const raw = await Raw.open(path);
  try {
    const big = Buffer.alloc(MAX_REQUEST_BYTES + 1024, 0x61);
    raw.send(big);
    raw.send('\n{"id": 7, "method": "status", "params": {}}\n');
    const [refused, answered] = await raw.read(2, 20_000);
    assert.deepEqual(refused, { id: null, error: { code: 'input', message: `request line longer than ${MAX_REQUEST_BYTES} bytes; refused` } });
    assert.equal(answered?.['id'], 7);
    assert.ok(answered?.['result']);
    // A line of exactly the limit is read (and is garbage, answered as such).
    raw.send(Buffer.concat([Buffer.alloc(MAX_REQUEST_BYTES, 0x20), Buffer.from('\n{"id": 8, "method": "status"}\n')]));
    const [blank] = await raw.read(1, 20_000);
    assert.equal(blank?.['id'], 8, 'a blank line of the maximum size is skipped, not refused');
  } finally {
    raw.close();
    await server.close();
  }
});

test('answers come in request order even when an earlier request takes longer', async () => {
  const { path, server, control } = await serve();
  await control.applyPolicies([{ policy: egress, source: 'x' }]);
  control.listAddDelayMs = 50;
  const raw = await Raw.open(path);
  try {
    const lines = [];
    for (let i = 1; i <= 40; i++) {
      lines.push(JSON.stringify(i % 2 ? { id: i, method: 'lists.add', params: { name: 'blocked', entries: [`10.0.0.${i}`] } } : { id: i, method: 'status', params: {} }));
    }
    raw.send(`${lines.join('\n')}\n`);
    const answers = await raw.read(40, 20_000);
    assert.deepEqual(
      answers.map((a) => a['id']),
      Array.from({ length: 40 }, (_, i) => i + 1),
    );
  } finally {
    raw.close();
    await server.close();
  }
});

test('abrupt closes and clients that do not read do not hurt the server', async () => {
  const { path, server, control, logs } = await serve(new FakeControl(), { stallTimeoutMs: 300 });
  try {
    // Gone mid-request, mid-line, and right after connecting.
    for (const text of ['{"id": 1, "method": "status", "params": {}}\n', '{"id": 1, "meth', '']) {
      const raw = await Raw.open(path);
      raw.send(text);
      raw.socket.destroy();
    }
    // Half-closed after the request: still answered.
    const half = await Raw.open(path);
    half.socket.end('{"id": 9, "method": "status", "params": {}}\n');
    assert.equal((await half.read(1))[0]?.['id'], 9);
    await half.closed;

    // A reader that never reads big answers: disconnected once it stalls.
    await control.applyPolicies([{ policy: egress, source: 'x' }]);
    const list = control.listsByName.get('blocked');
    for (let i = 0; i < 50_000; i++) list?.entries.set(`10.${i >> 16}.${(i >> 8) & 255}.${i & 255}`, undefined);
    const stalled = await Raw.open(path);
    stalled.socket.pause();
    stalled.send(`${Array.from({ length: 50 }, (_, i) => JSON.stringify({ id: i, method: 'lists.show', params: {} })).join('\n')}\n`);
    const deadline = Date.now() + 10_000;
    while (!logs.some((l) => /does not read/.test(String(l['msg']))) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.ok(logs.some((l) => /does not read/.test(String(l['msg']))), 'the stalled client is logged and dropped');
    stalled.close();

    const client = await connectControl(path);
    assert.equal((await client.status()).pid, process.pid, 'the server still answers');
    client.close();
  } finally {
    await server.close();
  }
});

test('a peer that is not root is refused, and the refusal is logged', async () => {
  const { path, server, logs } = await serve();
  try {
    // Let uid 65534 reach the socket: the server's own 0700/0600 would stop it
    // at the file system, before the peer check this test is about.
    await chmod(join(path, '..'), 0o755);
    await chmod(root, 0o755);
    await chmod(path, 0o666);
    const script = `
      const s = require('net').connect(${JSON.stringify(path)});
      let out = '';
      s.on('connect', () => s.write('{"id": 1, "method": "status", "params": {}}\\n'));
      s.on('data', (d) => (out += d));
      s.on('close', () => { process.stdout.write(out); });
      s.on('error', (e) => { process.stderr.write(String(e)); process.exit(3); });
    `;
    const child = spawn(process.execPath, ['-e', script], { uid: 65534, gid: 65534, cwd: '/', stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    assert.equal(code, 0, stderr);
    const lines = stdout.trim().split('\n');
    assert.equal(lines.length, 1, 'one answer: the refusal, not the status');
    assert.deepEqual(JSON.parse(lines[0] ?? ''), {
      id: null,
      error: { code: 'denied', message: 'the krsi control socket serves root only (you are uid 65534)' },
    });
    const warning = logs.find((l) => l['level'] === 40 && /refused/.test(String(l['msg'])));
    assert.ok(warning, 'the attempt is logged');
    const peer = warning['peer'] as { pid: number; uid: number; gid: number };
    assert.equal(peer.uid, 65534);
    assert.equal(peer.gid, 65534);
    assert.equal(peer.pid, child.pid);
  } finally {
    await server.close();
  }
});

test('the client reports a refusal as a denied ControlError', async () => {
  // The same refusal, as the client sees it: an error with id null ends every call.
  const { createServer } = await import('node:net');
  const fakePath = join(root, 'denier.sock');
  const denier = createServer((s) => s.end('{"id":null,"error":{"code":"denied","message":"the krsi control socket serves root only (you are uid 1000)"}}\n'));
  await new Promise<void>((r) => denier.listen(fakePath, r));
  try {
    const client = await connectControl(fakePath);
    await assert.rejects(client.status(), (err: unknown) => err instanceof ControlError && err.code === 'denied' && /uid 1000/.test(err.message));
    client.close();
  } finally {
    denier.close();
  }
});

test('a stale socket is replaced; a live one, or a file that is no socket, is not', async () => {
  // Stale: its listener was killed without closing it.
  const stalePath = socketPath();
  await mkdir(join(stalePath, '..'), { mode: 0o700 });
  const child = spawn(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(stalePath)}, () => console.log('up'))`], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
  child.kill('SIGKILL');
  await new Promise((resolve) => child.once('exit', resolve));
  assert.ok((await lstat(stalePath)).isSocket(), 'the socket file outlived its listener');
  const server = await startControlServer(new FakeControl(), { path: stalePath, logger: capturingLogger().logger });
  try {
    const client = await connectControl(stalePath);
    assert.equal((await client.status()).pid, process.pid);
    client.close();

    // Live: a second server on the same path refuses to start, and the first still works.
    await assert.rejects(startControlServer(new FakeControl(), { path: stalePath, logger: capturingLogger().logger }), {
      name: 'ControlServerError',
      message: new RegExp(`^another agent listens on ${stalePath.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`),
    });
    const again = await connectControl(stalePath);
    assert.equal((await again.status()).pid, process.pid);
    again.close();
  } finally {
    await server.close();
  }

  // Not a socket: left alone.
  const filePath = socketPath();
  await mkdir(join(filePath, '..'), { mode: 0o700 });
  await writeFile(filePath, 'precious');
  await assert.rejects(startControlServer(new FakeControl(), { path: filePath }), /exists and is not a socket/);
  assert.equal((await lstat(filePath)).isFile(), true);
});

test('with no agent, the client says so', async () => {
  const path = join(root, 'nobody-here.sock');
  await assert.rejects(
    connectControl(path),
    (err: unknown) =>
      err instanceof AgentUnavailableError &&
      err.message === `no krsi agent is running (nothing listens on ${path}); start one with \`krsi run\``,
  );
});

test('close() ends connected clients and later calls fail clearly', async () => {
  const { path, server } = await serve();
  const client = await connectControl(path);
  assert.equal((await client.status()).pid, process.pid);
  await server.close();
  await assert.rejects(client.status(), (err: unknown) => err instanceof AgentUnavailableError && /closed the connection/.test(err.message));
  client.close();
});

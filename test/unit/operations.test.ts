// Issue 7 on the host: event filters, the subscribers' bounded queues, the
// rotating events file, metrics rendering, the process cache, cgroup paths,
// container ids, user names, rule states, the events.subscribe and reload
// methods over a real control socket, and the documented exit codes.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { ExitCode } from '../../src/cli/exit-codes.js';
import { filterFromOptions } from '../../src/cli/commands/events.js';
import { startControlServer } from '../../src/control/server.js';
import { connectControl } from '../../src/control/client.js';
import { EventSchema, SCHEMA_VERSION, type ExecEvent, type KrsiEvent } from '../../src/events/schema.js';
import { parseListenAddress } from '../../src/ops/address.js';
import { CgroupPaths, cgroup2Mount } from '../../src/ops/cgroups.js';
import { containerFromCgroup } from '../../src/ops/container-id.js';
import { Enricher } from '../../src/ops/enrich.js';
import { EventHub } from '../../src/ops/event-hub.js';
import { RotatingFile } from '../../src/ops/file-sink.js';
import { compileFilter } from '../../src/ops/filter.js';
import { AgentMetrics, serveMetrics } from '../../src/ops/metrics.js';
import { NameCache, parseIdFile } from '../../src/ops/names.js';
import { ProcessCache, parseStat, procfs, type CachedProcess, type ProcSource } from '../../src/ops/process-cache.js';
import { ruleStates } from '../../src/ops/rule-states.js';
import { definePolicy } from '../../src/policy/define.js';
import { FakeControl } from '../lib/fake-control.js';

const dir = mkdtempSync(join(tmpdir(), 'krsi-ops-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function execEvent(over: { path?: string; decision?: 'allowed' | 'denied'; uid?: number; rule?: string; cgroupId?: string; pid?: number; ppid?: number } = {}): ExecEvent {
  const ref = over.rule ? { policy: over.rule.split('/')[0]!, rule: over.rule.split('/')[1]!, action: 'deny' as const, mode: 'enforce' as const } : null;
  return {
    schema: SCHEMA_VERSION,
    kind: 'exec',
    time: '2026-11-29T06:00:00.000000000Z',
    decision: over.decision ?? 'allowed',
    policy: {
      generation: 1,
      decided_by: ref ? 'rule' : 'default',
      rule: ref,
      default: ref ? null : 'allow',
      would_deny: null,
      default_would_deny: false,
      audit: null,
      matched: over.rule ? [over.rule] : [],
      secureexec: false,
      killed: false,
      context_unknown: false,
    },
    process: {
      pid: over.pid ?? 100,
      tid: over.pid ?? 100,
      ppid: over.ppid ?? 1,
      uid: over.uid ?? 0,
      gid: 0,
      euid: over.uid ?? 0,
      egid: 0,
      comm: 'sh',
      cgroup_id: over.cgroupId ?? '1',
      start_boottime_ns: '1',
    },
    exec: {
      path: over.path ?? '/usr/bin/true',
      path_unresolved: false,
      filename: over.path ?? '/usr/bin/true',
      filename_truncated: false,
      dev: '8:1',
      ino: '12',
      argc: 1,
      argv: ['true'],
      argv_truncated: false,
      argv_unreadable: false,
    },
  };
}

describe('event filters', () => {
  test('each field narrows; lists are any-of; the empty filter passes all', () => {
    const e = execEvent({ path: '/tmp/x/target', decision: 'denied', uid: 1000, rule: 'p/deny-target', cgroupId: '77' });
    (e.process as { cgroup?: string }).cgroup = '/system.slice/docker-abc.scope';
    const pass = (f: Parameters<typeof compileFilter>[0]): boolean => compileFilter(f)(e);
    assert.ok(pass({}));
    assert.ok(pass({ hook: ['file_open', 'exec'] }));
    assert.ok(!pass({ hook: ['file_open'] }));
    assert.ok(pass({ decision: ['denied'] }));
    assert.ok(!pass({ decision: ['allowed'] }));
    assert.ok(pass({ binary: ['target'] }), 'basename');
    assert.ok(pass({ binary: ['/tmp/x/target'] }), 'full path');
    assert.ok(pass({ binary: ['/tmp/*'] }), 'glob');
    assert.ok(!pass({ binary: ['/usr/*', 'true'] }));
    assert.ok(pass({ uid: [0, 1000] }));
    assert.ok(!pass({ uid: [0] }));
    assert.ok(pass({ cgroup: ['77'] }));
    assert.ok(pass({ cgroup: ['/system.slice'] }), 'path prefix');
    assert.ok(!pass({ cgroup: ['/system.sl'] }), 'only at a path component');
    assert.ok(pass({ rule: ['p/deny-target'] }));
    assert.ok(pass({ rule: ['deny-target'] }));
    assert.ok(!pass({ rule: ['q/deny-target'] }));
    assert.ok(!pass({ decision: ['denied'], uid: [5] }), 'all fields must match');
    // An event without a decision fails a decision filter.
    const gap: KrsiEvent = { schema: SCHEMA_VERSION, kind: 'gap', time: e.time, ring: 'events', cpu: 0, first_seq: '1', missing: 2 };
    assert.ok(!compileFilter({ decision: ['denied'] })(gap));
    assert.ok(compileFilter({ hook: ['gap'] })(gap));
  });

  test('the CLI options become the wire filter', () => {
    assert.deepEqual(filterFromOptions({ hook: ['exec'], decision: ['denied'], binary: [], uid: [0], cgroup: [], rule: [] }), { hook: ['exec'], decision: ['denied'], uid: [0] });
  });
});

describe('event hub', () => {
  test('a slow subscriber loses events, counted, and is told; a fast one gets all; the publisher never waits', () => {
    const hub = new EventHub(100);
    let slowPending = 0;
    const slow: string[] = [];
    const fast: string[] = [];
    const s = hub.subscribe({}, { pending: () => slowPending, write: (l) => void slow.push(l) });
    hub.subscribe({ decision: ['denied'] }, { pending: () => 0, write: (l) => void fast.push(l) });
    slowPending = 1000; // the reader stopped reading
    for (let i = 0; i < 10; i++) hub.publish(execEvent({ decision: i % 2 ? 'denied' : 'allowed' }));
    assert.equal(s.lost, 10);
    assert.equal(hub.lostTotal, 10);
    assert.equal(fast.filter((l) => l.startsWith('{"event"')).length, 5);
    slowPending = 0; // it caught up: the next line says how many it lost
    hub.publish(execEvent());
    assert.deepEqual(slow.map((l) => Object.keys(JSON.parse(l) as object)[0]), ['live', 'lost', 'event']);
    assert.equal((JSON.parse(slow[1]!) as { lost: number }).lost, 10);
    s.close();
    assert.equal(hub.count, 1);
  });

  test('backlog: the last n matching events first, then the live marker', () => {
    const hub = new EventHub();
    for (let i = 0; i < 5; i++) hub.publish(execEvent({ pid: 10 + i, decision: i >= 3 ? 'denied' : 'allowed' }));
    const got: string[] = [];
    hub.subscribe({ decision: ['denied'] }, { pending: () => 0, write: (l) => void got.push(l) }, 10);
    assert.deepEqual(
      got.map((l) => (JSON.parse(l) as { event?: ExecEvent }).event?.process.pid ?? 'live'),
      [13, 14, 'live'],
    );
  });
});

describe('rotating events file', () => {
  test('rotates by size, keeps K old files, never loses or splits a line', () => {
    const path = join(dir, 'rot', 'events.jsonl');
    mkdirSync(join(dir, 'rot'));
    const f = new RotatingFile({ path, maxBytes: 1000, keep: 2 });
    const line = (i: number): string => `${JSON.stringify({ i, pad: 'x'.repeat(80) })}\n`;
    for (let i = 0; i < 100; i++) f.write(line(i));
    f.close();
    assert.deepEqual(readdirSync(join(dir, 'rot')).sort(), ['events.jsonl', 'events.jsonl.1', 'events.jsonl.2']);
    const files = [`${path}.2`, `${path}.1`, path];
    for (const p of files) assert.ok(statSync(p).size <= 1000, `${p} within the size bound`);
    const all = files.flatMap((p) => readFileSync(p, 'utf8').split('\n').filter(Boolean).map((l) => (JSON.parse(l) as { i: number }).i));
    // The newest lines, contiguous and in order, ending with the last written.
    assert.equal(all.at(-1), 99);
    assert.deepEqual(all, all.map((_, k) => all[0]! + k));
    assert.ok(f.rotations > 2);
  });

  test('appends to an existing file and counts its size', () => {
    const path = join(dir, 'append.jsonl');
    writeFileSync(path, 'x'.repeat(950) + '\n');
    const f = new RotatingFile({ path, maxBytes: 1000, keep: 1 });
    f.write('y'.repeat(60) + '\n');
    f.close();
    assert.equal(readFileSync(`${path}.1`, 'utf8').length, 951);
    assert.equal(readFileSync(path, 'utf8'), 'y'.repeat(60) + '\n');
  });

  test('keep 0: the file starts again', () => {
    const path = join(dir, 'zero.jsonl');
    const f = new RotatingFile({ path, maxBytes: 4096, keep: 0 });
    for (let i = 0; i < 100; i++) f.write('z'.repeat(99) + '\n');
    f.close();
    assert.ok(!existsSync(`${path}.1`));
    assert.ok(statSync(path).size <= 4096);
  });
});

describe('metrics', () => {
  test('renders counters, ring and hook figures, generation and the latency histogram; served over HTTP', async () => {
    const fake = new FakeControl();
    const m = new AgentMetrics({ status: () => fake.status(), subscriberLost: () => 3, processCacheSize: () => 42 }, { processMetrics: true });
    m.observe(execEvent({ decision: 'denied' }));
    m.observe(execEvent({ decision: 'denied' }));
    m.observe(execEvent());
    m.observe({ schema: SCHEMA_VERSION, kind: 'gap', time: 't', ring: 'events', cpu: 1, first_seq: '5', missing: 7 });
    m.observe({
      schema: SCHEMA_VERSION,
      kind: 'reaction',
      time: 't',
      reaction: { policy: 'p', name: 'r' },
      trigger: { policy: 'p', rule: 'x', kind: 'exec', pid: 1, time: 't' },
      actions: [],
      latency_us: 300,
      errors: [],
    });
    const server = await serveMetrics(m, { host: '127.0.0.1', port: 0 });
    try {
      const port = (server.address() as { port: number }).port;
      const res = await fetch(`http://127.0.0.1:${port}/metrics`);
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-type') ?? '', /text\/plain/);
      const text = await res.text();
      assert.match(text, /^krsi_decisions_total\{kind="exec",decision="denied"\} 2$/m);
      assert.match(text, /^krsi_decisions_total\{kind="exec",decision="allowed"\} 1$/m);
      assert.match(text, /^krsi_events_total\{kind="exec"\} 3$/m);
      assert.match(text, /^krsi_gap_records_total\{ring="events"\} 7$/m);
      assert.match(text, /^krsi_ring_records\{ring="events",state="dropped"\} 4$/m);
      assert.match(text, /^krsi_ring_records\{ring="events",state="pending"\} 1$/m);
      assert.match(text, /^krsi_hook_records\{hook="exec",counter="denied"\} 1$/m);
      assert.match(text, /^krsi_policy_generation 0$/m);
      assert.match(text, /^krsi_reaction_latency_seconds_bucket\{le="0.0005"\} 1$/m);
      assert.match(text, /^krsi_reaction_latency_seconds_bucket\{le="0.00025"\} 0$/m);
      assert.match(text, /^krsi_subscriber_lost_events 3$/m);
      assert.match(text, /^krsi_process_cache_entries 42$/m);
      assert.match(text, /^krsi_process_resident_memory_bytes \d+/m);
      assert.equal((await fetch(`http://127.0.0.1:${port}/other`)).status, 404);
    } finally {
      server.close();
    }
  });

  test('listen addresses', () => {
    assert.deepEqual(parseListenAddress('127.0.0.1:9464'), { host: '127.0.0.1', port: 9464 });
    assert.deepEqual(parseListenAddress('[::1]:9464'), { host: '::1', port: 9464 });
    assert.deepEqual(parseListenAddress('9464'), { host: '127.0.0.1', port: 9464 });
    for (const bad of ['', 'host', ':1', '1.2.3.4:0', '1.2.3.4:70000', '::1:9464']) assert.throws(() => parseListenAddress(bad), /not an address/, bad);
  });
});

describe('enrichment', () => {
  test('/proc/PID/stat parsing survives odd comms', () => {
    assert.deepEqual(parseStat('42 (a) b (c)) S 7 42 42 0 -1'), { pid: 42, comm: 'a) b (c)', ppid: 7 });
    assert.equal(parseStat('garbage'), null);
  });

  test('ancestors from the cache, lazily from the source, bounded, kept by execs, pruned', () => {
    const live = new Map<number, CachedProcess>([
      [1, { pid: 1, ppid: 0, comm: 'init', exe: '/sbin/init' }],
      [10, { pid: 10, ppid: 1, comm: 'sshd', exe: '/usr/sbin/sshd' }],
      [20, { pid: 20, ppid: 10, comm: 'bash', exe: '/bin/bash' }],
    ]);
    const reads: number[] = [];
    const source: ProcSource = {
      read: (pid) => (reads.push(pid), live.get(pid) ?? null),
      pids: () => [1, 10],
      alive: (pid) => live.has(pid),
    };
    const cache = new ProcessCache(source);
    assert.equal(cache.seed(), 2);
    reads.length = 0;
    assert.deepEqual(cache.ancestors(20), [
      { pid: 20, comm: 'bash', exe: '/bin/bash' },
      { pid: 10, comm: 'sshd', exe: '/usr/sbin/sshd' },
      { pid: 1, comm: 'init', exe: '/sbin/init' },
    ]);
    assert.deepEqual(reads, [20], 'only the unseeded process is read');
    assert.equal(cache.ancestors(20, 2).length, 2, 'bounded depth');
    cache.exec(20, 10, 'python3', '/usr/bin/python3');
    assert.deepEqual(cache.ancestors(20)[0], { pid: 20, comm: 'python3', exe: '/usr/bin/python3' });
    live.delete(20);
    assert.equal(cache.prune(), 1);
    assert.deepEqual(cache.ancestors(20), [], 'a gone process is unknown');
    // A loop in stale data cannot hang it.
    const loop = new ProcessCache({ read: () => null, pids: () => [], alive: () => true });
    loop.set({ pid: 5, ppid: 6, comm: 'a' });
    loop.set({ pid: 6, ppid: 5, comm: 'b' });
    assert.equal(loop.ancestors(5).length, 2);
  });

  test('this process is in the real /proc with its parent chain', () => {
    const cache = new ProcessCache(procfs());
    assert.ok(cache.seed() > 1);
    const chain = cache.ancestors(process.pid);
    assert.equal(chain[0]?.pid, process.pid);
    assert.equal(chain[0]?.exe, process.execPath);
    assert.equal(chain[1]?.pid, process.ppid);
  });

  test('container ids from cgroup paths', () => {
    const id = 'a'.repeat(64);
    const cases: Array<[string, string | null, string?]> = [
      [`/system.slice/docker-${id}.scope`, id, 'docker'],
      [`/docker/${id}`, id, 'docker'],
      [`/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice/cri-containerd-${id}.scope`, id, 'containerd'],
      [`/kubepods/besteffort/pod1234/${id}`, id, 'containerd'],
      [`/kubepods.slice/kubepods-pod1.slice/crio-${id}.scope`, id, 'cri-o'],
      [`/machine.slice/libpod-${id}.scope/container`, id, 'podman'],
      [`/machine.slice/libpod-conmon-${id}.scope`, null],
      [`/kubepods.slice/crio-conmon-${id}.scope`, null],
      ['/user.slice/user-1000.slice/session-2.scope', null],
      ['/', null],
      [`/system.slice/docker-${'a'.repeat(63)}.scope`, null],
    ];
    for (const [path, want, runtime] of cases) {
      const got = containerFromCgroup(path);
      assert.equal(got?.id ?? null, want, path);
      if (runtime) assert.equal(got?.runtime, runtime, path);
    }
  });

  test('user and group names, re-read when the file changes', () => {
    assert.deepEqual([...parseIdFile('root:x:0:0::/root:/bin/sh\n# c\nbad\nnobody:x:65534:65534::/:/bin/false\ndup:x:0:0\n')], [
      [0, 'root'],
      [65534, 'nobody'],
    ]);
    const passwd = join(dir, 'passwd');
    const group = join(dir, 'group');
    writeFileSync(passwd, 'alice:x:1000:1000::/home/alice:/bin/sh\n');
    writeFileSync(group, 'staff:x:50:\n');
    const names = new NameCache({ passwd, group, recheckMs: 0 });
    assert.equal(names.user(1000), 'alice');
    assert.equal(names.user(1001), undefined);
    assert.equal(names.group(50), 'staff');
    writeFileSync(passwd, 'alice:x:1000:1000::/home/alice:/bin/sh\nbob:x:1001:1001::/:/bin/sh\n');
    const t = new Date(Date.now() + 5000);
    utimesSync(passwd, t, t);
    assert.equal(names.user(1001), 'bob');
  });

  test('cgroup ids to paths, from a cgroup-like tree', () => {
    const root = join(dir, 'cg');
    mkdirSync(join(root, 'system.slice', 'ssh.service'), { recursive: true });
    const paths = new CgroupPaths(root, 1000, 0);
    const ino = statSync(join(root, 'system.slice', 'ssh.service'), { bigint: true }).ino.toString();
    assert.equal(paths.path(ino), '/system.slice/ssh.service');
    mkdirSync(join(root, 'new'));
    assert.equal(paths.path(statSync(join(root, 'new'), { bigint: true }).ino.toString()), '/new', 'a miss rescans');
    assert.equal(paths.path('1'), undefined);
  });

  test('an enriched event is still schema-valid and carries the new fields', () => {
    const cgMount = cgroup2Mount();
    const enricher = new Enricher({ pruneMs: 0 });
    enricher.start();
    const e = execEvent({ pid: process.pid, ppid: process.ppid, uid: 0, cgroupId: cgMount ? statSync(cgMount, { bigint: true }).ino.toString() : '1' });
    enricher.enrich(e);
    enricher.stop();
    EventSchema.parse(e);
    assert.equal(e.process.ancestors?.[0]?.pid, process.ppid);
    assert.equal(e.process.user, 'root');
    if (cgMount) assert.equal(e.process.cgroup, '/');
    // The exec is now in the cache with its new image.
    assert.equal(enricher.cache.get(process.pid)?.exe, '/usr/bin/true');
  });
});

describe('rule states', () => {
  const policy = definePolicy({
    apiVersion: 'krsi.dev/v1',
    kind: 'Policy',
    metadata: { name: 'p' },
    spec: {
      rules: [
        { name: 'plain', hook: 'exec', match: { binary: { path: ['/x'] } }, action: 'deny' },
        { name: 'digest', hook: 'exec', match: { binary: { sha256: ['a'.repeat(64)] } }, action: 'deny' },
        { name: 'later', hook: 'exec', match: {}, action: 'audit', afterLockPoint: true },
        { name: 'watch', hook: 'connect', match: {}, action: 'deny', mode: 'monitor' },
        { name: 'opens', hook: 'file_open', match: { file: { path: ['/etc/shadow'] } }, action: 'deny' },
      ],
    },
  });
  test('enforced, degraded (and why), monitor, inactive', () => {
    const attached = new Set(['exec_check', 'connect_check']);
    const states = ruleStates([policy], { attached, ima: false, lockPointReached: false });
    assert.deepEqual(
      states.map((s) => [s.rule, s.state]),
      [
        ['plain', 'enforced'],
        ['digest', 'degraded'],
        ['later', 'inactive'],
        ['watch', 'monitor'],
        ['opens', 'degraded'],
      ],
    );
    assert.match(states[1]!.reason!, /IMA/);
    assert.match(states[4]!.reason!, /file_open/);
    const withIma = ruleStates([policy], { attached: new Set([...attached, 'file_open']), ima: true, lockPointReached: true });
    assert.deepEqual(withIma.map((s) => s.state), ['enforced', 'enforced', 'enforced', 'monitor', 'enforced']);
  });
});

describe('control socket: events.subscribe and reload', () => {
  test('a subscriber gets the matching events pushed; reload calls the reload hook; without one it is refused', async () => {
    const hub = new EventHub();
    const path = join(dir, 'sock', 'krsi.sock');
    let reloads = 0;
    const logger = pino({ level: 'silent' });
    const server = await startControlServer(new FakeControl(), {
      path,
      logger,
      events: hub,
      reload: async () => (reloads++, { generation: 7, compileMs: 1, swapMs: 1, rules: 2, entries: 3 }),
    });
    try {
      const socket = connect(path);
      const lines: Array<Record<string, unknown>> = [];
      const waiters: Array<() => void> = [];
      createInterface({ input: socket }).on('line', (l) => {
        lines.push(JSON.parse(l) as Record<string, unknown>);
        for (const w of waiters.splice(0)) w();
      });
      const until = async (n: number): Promise<void> => {
        while (lines.length < n) await new Promise<void>((r) => waiters.push(r));
      };
      socket.write(`${JSON.stringify({ id: 1, method: 'events.subscribe', params: { filter: { decision: ['denied'] } } })}\n`);
      await until(2);
      assert.deepEqual(lines[0], { id: 1, result: { subscribed: true } });
      assert.deepEqual(lines[1], { live: true });
      hub.publish(execEvent({ pid: 1 }));
      hub.publish(execEvent({ pid: 2, decision: 'denied' }));
      await until(3);
      assert.equal(((lines[2]!['event'] as ExecEvent).process.pid), 2);
      socket.destroy();

      const client = await connectControl(path);
      assert.deepEqual(await client.call('reload', {}), { generation: 7, compileMs: 1, swapMs: 1, rules: 2, entries: 3 });
      assert.equal(reloads, 1);
      await assert.rejects(client.call('events.subscribe', { filter: { bogus: 1 } }), /bogus|Unrecognized/i);
      client.close();
      await new Promise((r) => setTimeout(r, 50));
      assert.equal(hub.count, 0, 'a closed subscriber is forgotten');
    } finally {
      await server.close();
    }
    const bare = await startControlServer(new FakeControl(), { path: join(dir, 'sock2', 'krsi.sock'), logger });
    try {
      const client = await connectControl(join(dir, 'sock2', 'krsi.sock'));
      await assert.rejects(client.call('reload', {}), /without --policy/);
      await assert.rejects(client.call('events.subscribe', {}), /no event subscriptions/);
      client.close();
    } finally {
      await bare.close();
    }
  });
});

describe('exit codes', () => {
  test('distinct, and each documented in docs/operations.md', () => {
    const values = Object.values(ExitCode);
    assert.equal(new Set(values).size, values.length);
    const doc = readFileSync(fileURLToPath(new URL('../../docs/operations.md', import.meta.url)), 'utf8');
    for (const [name, code] of Object.entries(ExitCode)) assert.match(doc, new RegExp(`^\\| ${code} \\|`, 'm'), `exit code ${code} (${name}) in the table`);
  });
});


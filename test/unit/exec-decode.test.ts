import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  KRSI_ABI_VERSION,
  KRSI_ACTION_ALLOW,
  KRSI_ACTION_DENY,
  KRSI_EVENT_EXEC,
  KRSI_PHOOK_EXEC,
  KRSI_REF_AUDIT,
  KRSI_REF_DEFAULT,
  KRSI_RULE_NONE,
  KRSI_VERDICT_ALLOW,
  KRSI_VERDICT_DENY,
  KRSI_EXEC_ARGV_TRUNCATED,
  KRSI_EXEC_DATA_MAX,
  KRSI_EXEC_ENV_DATA_MAX,
  KRSI_EXEC_ENV_INCOMPLETE,
  KRSI_EXEC_ENV_MISMATCH,
  KRSI_EXEC_ENV_READ,
  KRSI_EXEC_FILELESS_DELETED,
  KRSI_EXEC_FILELESS_MEMFD,
  KrsiExecEventLayout,
  encodeKrsiExecEvent,
} from '../../src/abi/generated.js';
import { EventClock } from '../../src/events/clock.js';
import { UnknownRecordError, decodeRecord as decode, splitBatch } from '../../src/events/decode.js';
import type { PolicyNames } from '../../src/events/policy-outcome.js';
import { EventSchema } from '../../src/events/schema.js';

const enc = new TextEncoder();

const names: PolicyNames = {
  rule: (generation, hook, bit) =>
    generation === 7 && hook === KRSI_PHOOK_EXEC && bit === 3 ? { policy: 'p', rule: 'no-tmp', action: 'deny', mode: 'enforce' } : undefined,
};
const decodeRecord = (view: DataView, clock: EventClock) => decode(view, { clock, names });

interface RecordSpec {
  path: Uint8Array;
  filename: Uint8Array;
  args: Uint8Array[];
  argc?: number;
  denied?: boolean;
  flags?: number;
  ruleBit?: number;
  /** "NAME=value" strings as the kernel appends them after argv. */
  env?: Uint8Array[];
  envTruncated?: number;
}

/** An exec record as the BPF program writes it: compact, only hdr.size bytes. */
function execRecord(spec: RecordSpec): DataView {
  const data = new Uint8Array(KRSI_EXEC_DATA_MAX + KRSI_EXEC_ENV_DATA_MAX);
  const z = (b: Uint8Array): Uint8Array => Uint8Array.from([...b, 0]);
  const path = z(spec.path);
  const filename = z(spec.filename);
  const args = spec.args.map(z);
  const env = (spec.env ?? []).map(z);
  let off = 0;
  for (const part of [path, filename, ...args, ...env]) {
    data.set(part, off);
    off += part.length;
  }
  const argsLen = args.reduce((n, a) => n + a.length, 0);
  const size = KrsiExecEventLayout.fields.data.offset + off;
  const full = encodeKrsiExecEvent({
    hdr: { type: KRSI_EVENT_EXEC, abi: KRSI_ABI_VERSION, size, timeNs: 5_000_000_000n, seq: 1n, cpu: 0, ring: 1 },
    task: {
      pid: 101,
      tgid: 100,
      ppid: 1,
      uid: 1000,
      gid: 1000,
      euid: 0,
      egid: 0,
      cgroupId: 2n ** 60n + 7n,
      startNs: 123n,
      comm: Uint8Array.from([...enc.encode('true'), 0]),
    },
    policy: {
      generation: 7n,
      matched: spec.ruleBit === undefined ? 0n : 1n << BigInt(spec.ruleBit),
      hook: KRSI_PHOOK_EXEC,
      rule: spec.ruleBit ?? KRSI_RULE_NONE,
      action: spec.denied ? KRSI_ACTION_DENY : KRSI_ACTION_ALLOW,
      verdict: spec.denied ? KRSI_VERDICT_DENY : KRSI_VERDICT_ALLOW,
      wouldRule: KRSI_RULE_NONE,
      auditRule: KRSI_RULE_NONE,
      flags: spec.ruleBit === undefined ? KRSI_REF_DEFAULT : 0,
    },
    ino: 2n ** 62n + 1n,
    dev: (8 << 20) | 1,
    flags: spec.flags ?? 0,
    argc: spec.argc ?? spec.args.length,
    pathLen: path.length,
    filenameLen: filename.length,
    argsLen,
    argsCount: args.length,
    envLen: env.reduce((n, a) => n + a.length, 0),
    envCount: env.length,
    envTruncated: spec.envTruncated ?? 0,
    data,
  });
  return new DataView(full.buffer, 0, size);
}

test('an exec record decodes into a schema-valid event with every field', () => {
  const event = decodeRecord(
    execRecord({ path: enc.encode('/usr/bin/true'), filename: enc.encode('./t'), args: [enc.encode('t'), enc.encode('a b')] }),
    new EventClock(),
  );
  EventSchema.parse(event);
  assert.equal(event.kind, 'exec');
  if (event.kind !== 'exec') return;
  assert.equal(event.decision, 'allowed');
  assert.equal(event.policy.decided_by, 'default');
  assert.equal(event.policy.rule, null);
  assert.equal(event.policy.default, 'allow');
  assert.equal(event.policy.generation, 7);
  assert.deepEqual(event.process, {
    pid: 100,
    tid: 101,
    ppid: 1,
    uid: 1000,
    gid: 1000,
    euid: 0,
    egid: 0,
    comm: 'true',
    cgroup_id: (2n ** 60n + 7n).toString(),
    start_boottime_ns: '123',
  });
  assert.equal(event.exec.path, '/usr/bin/true');
  assert.equal(event.exec.filename, './t');
  assert.equal(event.exec.dev, '8:1');
  assert.equal(event.exec.ino, (2n ** 62n + 1n).toString(), '64-bit inode numbers survive as strings');
  assert.deepEqual(event.exec.argv, ['t', 'a b']);
  assert.equal(event.exec.argv_truncated, false);
  assert.match(event.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/);
});

test('a denied exec names its policy, rule and generation', () => {
  const event = decodeRecord(
    execRecord({ path: enc.encode('/x'), filename: enc.encode('/x'), args: [], argc: 1, denied: true, ruleBit: 3 }),
    new EventClock(),
  );
  assert.ok(event.kind === 'exec');
  assert.equal(event.decision, 'denied');
  assert.deepEqual(event.policy.rule, { policy: 'p', rule: 'no-tmp', action: 'deny', mode: 'enforce' });
  assert.deepEqual(event.policy.matched, ['p/no-tmp']);
  assert.equal(event.policy.decided_by, 'rule');
  void KRSI_REF_AUDIT;
  assert.equal(event.exec.argv_truncated, true, 'fewer strings than argc without a read error means truncation');
});

test('truncation flagged by the kernel is reported', () => {
  const event = decodeRecord(
    execRecord({ path: enc.encode('/x'), filename: enc.encode('x'), args: [enc.encode('x')], argc: 500, flags: KRSI_EXEC_ARGV_TRUNCATED }),
    new EventClock(),
  );
  assert.ok(event.kind === 'exec');
  assert.equal(event.exec.argv_truncated, true);
  assert.equal(event.exec.argc, 500);
});

test('bytes that are not UTF-8 keep their exact value in base64', () => {
  const hostile = Uint8Array.from([0x2f, 0x74, 0xff, 0xfe, 0x0a, 0x1b]); // "/t" + invalid + \n + ESC
  const event = decodeRecord(execRecord({ path: hostile, filename: enc.encode('ok'), args: [enc.encode('fine'), hostile] }), new EventClock());
  EventSchema.parse(event);
  assert.ok(event.kind === 'exec');
  assert.equal(Buffer.from(event.exec.path_base64 ?? '', 'base64').compare(Buffer.from(hostile)), 0);
  assert.equal(event.exec.filename_base64, undefined);
  assert.deepEqual(event.exec.argv_base64, [null, Buffer.from(hostile).toString('base64')]);
  assert.doesNotMatch(JSON.stringify(event), /\n/, 'a JSON line stays one line');
});

test('lengths larger than the record are clamped, never trusted', () => {
  const view = execRecord({ path: enc.encode('/usr/bin/true'), filename: enc.encode('t'), args: [enc.encode('t')] });
  // Claim 4000 bytes of argv that never arrived.
  view.setUint16(KrsiExecEventLayout.fields.args_len.offset, 4000, true);
  const event = decodeRecord(view, new EventClock());
  assert.ok(event.kind === 'exec');
  assert.deepEqual(event.exec.argv, ['t']);
});

test('records of another ABI or type are refused with a clear error', () => {
  const view = execRecord({ path: enc.encode('/x'), filename: enc.encode('x'), args: [] });
  view.setUint16(2, KRSI_ABI_VERSION + 1, true);
  assert.throws(() => decodeRecord(view, new EventClock()), /rebuild the BPF objects/);
  view.setUint16(2, KRSI_ABI_VERSION, true);
  view.setUint16(0, 999, true);
  assert.throws(() => decodeRecord(view, new EventClock()), UnknownRecordError);
  assert.throws(() => decodeRecord(new DataView(new ArrayBuffer(4)), new EventClock()), /shorter than its header/);
});

test('a native batch splits into its records, and a corrupt batch throws', () => {
  const a = Buffer.from('abc');
  const b = Buffer.from('0123456789');
  const batch = Buffer.alloc(8 + 8 + 8 + 16);
  batch.writeUInt32LE(a.length, 0);
  batch.writeUInt32LE(1, 4);
  a.copy(batch, 8);
  batch.writeUInt32LE(b.length, 16);
  batch.writeUInt32LE(0, 20);
  b.copy(batch, 24);
  const records = [...splitBatch(batch, 2)];
  assert.deepEqual(
    records.map((r) => [r.ring, Buffer.from(r.view.buffer, r.view.byteOffset, r.view.byteLength).toString()]),
    [
      [1, 'abc'],
      [0, '0123456789'],
    ],
  );
  assert.throws(() => [...splitBatch(batch, 3)], /batch ends inside record 2/);
  batch.writeUInt32LE(1000, 16);
  assert.throws(() => [...splitBatch(batch, 2)], /overruns/);
});

test('recorded environment values, their truncation and the fileless and mismatch flags', () => {
  const hostile = Uint8Array.from([...enc.encode('LD_AUDIT='), 0xff, 0x41]);
  const event = decodeRecord(
    execRecord({
      path: enc.encode('/memfd:x (deleted)'),
      filename: enc.encode('/proc/self/fd/3'),
      args: [enc.encode('x')],
      env: [enc.encode('LD_PRELOAD=/tmp/evil.so'), hostile, enc.encode(`LD_LIBRARY_PATH=${'a'.repeat(1023)}`)],
      envTruncated: 0b100,
      flags: KRSI_EXEC_ENV_READ | KRSI_EXEC_FILELESS_MEMFD | KRSI_EXEC_ENV_MISMATCH,
    }),
    new EventClock(),
  );
  EventSchema.parse(event);
  assert.ok(event.kind === 'exec');
  assert.deepEqual(event.exec.argv, ['x'], 'argv ends where the variables begin');
  assert.equal(event.exec.env?.['LD_PRELOAD'], '/tmp/evil.so');
  assert.equal(event.exec.env?.['LD_AUDIT'], '\ufffdA');
  assert.equal(event.exec.env_base64?.['LD_AUDIT'], Buffer.from([0xff, 0x41]).toString('base64'));
  assert.deepEqual(event.exec.env_truncated, ['LD_LIBRARY_PATH']);
  assert.equal(event.exec.env_incomplete, false);
  assert.equal(event.exec.fileless, 'memfd');
  assert.equal(event.exec.env_mismatch, true);
});

test('without the environment scan there is no env; an unlinked file and an incomplete scan are said so', () => {
  const denied = decodeRecord(execRecord({ path: enc.encode('/x'), filename: enc.encode('/x'), args: [], denied: true }), new EventClock());
  assert.ok(denied.kind === 'exec');
  assert.equal(denied.exec.env, undefined, 'a denied exec has no new image to read');
  assert.equal(denied.exec.fileless, null);
  const big = decodeRecord(
    execRecord({
      path: enc.encode('/tmp/gone (deleted)'),
      filename: enc.encode('/proc/self/fd/4'),
      args: [],
      flags: KRSI_EXEC_ENV_READ | KRSI_EXEC_ENV_INCOMPLETE | KRSI_EXEC_FILELESS_DELETED,
    }),
    new EventClock(),
  );
  assert.ok(big.kind === 'exec');
  assert.deepEqual(big.exec.env, {});
  assert.equal(big.exec.env_incomplete, true);
  assert.equal(big.exec.fileless, 'deleted');
});

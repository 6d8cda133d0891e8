// Records of the policy hooks besides exec (file_open, file_unlink, mount,
// module_load, connect), as their BPF programs write them, into events.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  KRSI_ABI_VERSION,
  KRSI_ACTION_ALLOW,
  KRSI_ACTION_DENY,
  KRSI_ACTION_KILL,
  KRSI_CONNECT_ADDRESS_KNOWN,
  KRSI_EVENT_CONNECT,
  KRSI_EVENT_FILE_OPEN,
  KRSI_EVENT_FILE_UNLINK,
  KRSI_EVENT_MODULE_LOAD,
  KRSI_EVENT_MOUNT,
  KRSI_FILE_PATH_UNRESOLVED,
  KRSI_MODULE_DATA_MAX,
  KRSI_MODULE_FROM_FILE,
  KRSI_MODULE_FROM_MEMORY,
  KRSI_MODULE_NAME_UNKNOWN,
  KRSI_MOUNT_API_FSCONFIG,
  KRSI_MOUNT_API_MOUNT,
  KRSI_MOUNT_DATA_MAX,
  KRSI_MOUNT_MOUNTPOINT_KNOWN,
  KRSI_MOUNT_SOURCE_KNOWN,
  KRSI_PATH_MAX,
  KRSI_PHOOK_CONNECT,
  KRSI_PHOOK_FILE_OPEN,
  KRSI_PHOOK_FILE_UNLINK,
  KRSI_PHOOK_MODULE_LOAD,
  KRSI_PHOOK_MOUNT,
  KRSI_REF_AUDIT,
  KRSI_REF_DEFAULT,
  KRSI_REF_KILLED,
  KRSI_REF_WOULD_DENY,
  KRSI_RULE_NONE,
  KRSI_VERDICT_ALLOW,
  KRSI_VERDICT_DENY,
  KrsiConnectEventLayout,
  KrsiFileEventLayout,
  KrsiModuleEventLayout,
  KrsiMountEventLayout,
  encodeKrsiConnectEvent,
  encodeKrsiFileEvent,
  encodeKrsiModuleEvent,
  encodeKrsiMountEvent,
  type KrsiEventHeader,
  type KrsiPolicyRef,
  type KrsiTask,
} from '../../src/abi/generated.js';
import { EventClock } from '../../src/events/clock.js';
import { formatAddress, familyName } from '../../src/events/connect.js';
import { decodeRecord } from '../../src/events/decode.js';
import { openAccess, openFlagNames } from '../../src/events/file.js';
import { formatText } from '../../src/events/format.js';
import type { PolicyNames } from '../../src/events/policy-outcome.js';
import { EventSchema, type KrsiEvent } from '../../src/events/schema.js';

const enc = new TextEncoder();
const z = (s: string | Uint8Array): Uint8Array => Uint8Array.from([...(typeof s === 'string' ? enc.encode(s) : s), 0]);

const names: PolicyNames = {
  rule: (generation, hook, bit) => (generation === 3 ? { policy: 'p', rule: `hook${hook}-bit${bit}`, action: bit === 1 ? 'audit' : 'deny', mode: 'enforce' } : undefined),
};

function decode(view: DataView): KrsiEvent {
  const event = decodeRecord(view, { clock: new EventClock(), names });
  EventSchema.parse(event);
  // A JSON line stays one line, whatever bytes the kernel sent.
  assert.doesNotMatch(JSON.stringify(event), /\n/);
  assert.ok(formatText(event).length > 0);
  return event;
}

const task: KrsiTask = {
  pid: 41,
  tgid: 40,
  ppid: 1,
  uid: 1000,
  gid: 1000,
  euid: 1000,
  egid: 1000,
  cgroupId: 9n,
  startNs: 77n,
  comm: z('cat'),
};

const hdr = (type: number, size: number): KrsiEventHeader => ({ type, abi: KRSI_ABI_VERSION, size, timeNs: 1_000_000_000n, seq: 1n, cpu: 0, ring: 1 });

function ref(hook: number, how: 'deny' | 'kill' | 'audit' | 'monitor' | 'default-deny'): KrsiPolicyRef {
  const base = { generation: 3n, hook, wouldRule: KRSI_RULE_NONE, auditRule: KRSI_RULE_NONE };
  switch (how) {
    case 'deny':
      return { ...base, matched: 1n, rule: 0, action: KRSI_ACTION_DENY, verdict: KRSI_VERDICT_DENY, flags: 0 };
    case 'kill':
      return { ...base, matched: 1n, rule: 0, action: KRSI_ACTION_KILL, verdict: KRSI_VERDICT_DENY, flags: KRSI_REF_KILLED };
    case 'audit':
      return { ...base, matched: 2n, rule: KRSI_RULE_NONE, action: KRSI_ACTION_ALLOW, verdict: KRSI_VERDICT_ALLOW, auditRule: 1, flags: KRSI_REF_DEFAULT | KRSI_REF_AUDIT };
    case 'monitor':
      return { ...base, matched: 1n, rule: KRSI_RULE_NONE, action: KRSI_ACTION_ALLOW, verdict: KRSI_VERDICT_ALLOW, wouldRule: 0, flags: KRSI_REF_DEFAULT | KRSI_REF_WOULD_DENY };
    case 'default-deny':
      return { ...base, matched: 0n, rule: KRSI_RULE_NONE, action: KRSI_ACTION_DENY, verdict: KRSI_VERDICT_DENY, flags: KRSI_REF_DEFAULT };
  }
}

/** The record as the program emits it: only hdr.size bytes travel. */
function truncated(full: DataView, size: number): DataView {
  return new DataView(full.buffer, full.byteOffset, size);
}

function fileRecord(type: number, path: Uint8Array | null, policy: KrsiPolicyRef, openFlags = 0, fmode = 0): DataView {
  const data = new Uint8Array(KRSI_PATH_MAX);
  const p = path ? z(path) : new Uint8Array();
  data.set(p);
  const size = KrsiFileEventLayout.fields.data.offset + p.length;
  const full = encodeKrsiFileEvent({
    hdr: hdr(type, size),
    task,
    policy,
    ino: 2n ** 60n + 5n,
    dev: (8 << 20) | 3,
    openFlags,
    fmode,
    pathLen: p.length,
    flags: path ? 0 : KRSI_FILE_PATH_UNRESOLVED,
    data,
  });
  return truncated(full, size);
}

test('a denied open: path, identity, flags and the rule', () => {
  // O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_LARGEFILE; f_mode FMODE_WRITE.
  const flags = 0o1 | 0o100 | 0o1000 | 0o2000000 | 0o100000;
  const e = decode(fileRecord(KRSI_EVENT_FILE_OPEN, enc.encode('/etc/shadow'), ref(KRSI_PHOOK_FILE_OPEN, 'deny'), flags, 0x2));
  assert.ok(e.kind === 'file_open');
  assert.equal(e.decision, 'denied');
  assert.deepEqual(e.policy.rule, { policy: 'p', rule: `hook${KRSI_PHOOK_FILE_OPEN}-bit0`, action: 'deny', mode: 'enforce' });
  assert.equal(e.process.comm, 'cat');
  assert.deepEqual(e.file, {
    path: '/etc/shadow',
    path_unresolved: false,
    dev: '8:3',
    ino: (2n ** 60n + 5n).toString(),
    flags,
    flag_names: ['O_WRONLY', 'O_CREAT', 'O_TRUNC', 'O_LARGEFILE', 'O_CLOEXEC'],
    access: ['write'],
  });
  assert.match(formatText(e), /file_open DENIED .*\/etc\/shadow \(O_WRONLY\|O_CREAT\|O_TRUNC\|O_LARGEFILE\|O_CLOEXEC\) by p\//);
});

test('open flags and f_mode by name; unknown bits stay visible', () => {
  assert.deepEqual(openFlagNames(0), ['O_RDONLY']);
  assert.deepEqual(openFlagNames(0o2 | 0o4000), ['O_RDWR', 'O_NONBLOCK']);
  assert.deepEqual(openFlagNames(0o40 | 0o100000), ['O_RDONLY', 'O_LARGEFILE', '__FMODE_EXEC']);
  assert.deepEqual(openFlagNames(0x80000000), ['O_RDONLY', '0x80000000']);
  assert.deepEqual(openAccess(0x1 | 0x20), ['read', 'exec']);
  assert.deepEqual(openAccess(0x3), ['read', 'write']);
});

test('audit and monitor outcomes of an open are allowed, with the rule that noticed', () => {
  const audit = decode(fileRecord(KRSI_EVENT_FILE_OPEN, enc.encode('/srv/a'), ref(KRSI_PHOOK_FILE_OPEN, 'audit')));
  assert.ok(audit.kind === 'file_open');
  assert.equal(audit.decision, 'allowed');
  assert.equal(audit.policy.audit?.rule, `hook${KRSI_PHOOK_FILE_OPEN}-bit1`);
  assert.equal(audit.policy.decided_by, 'default');
  const monitor = decode(fileRecord(KRSI_EVENT_FILE_OPEN, enc.encode('/srv/m'), ref(KRSI_PHOOK_FILE_OPEN, 'monitor')));
  assert.ok(monitor.kind === 'file_open');
  assert.equal(monitor.decision, 'allowed');
  assert.equal(monitor.policy.would_deny?.rule, `hook${KRSI_PHOOK_FILE_OPEN}-bit0`);
  assert.match(formatText(monitor), /would deny: p\//);
});

test('an unlink: unresolved paths, hostile bytes, kills', () => {
  const none = decode(fileRecord(KRSI_EVENT_FILE_UNLINK, null, ref(KRSI_PHOOK_FILE_UNLINK, 'kill')));
  assert.ok(none.kind === 'file_unlink');
  assert.equal(none.file.path, '');
  assert.equal(none.file.path_unresolved, true);
  assert.equal(none.policy.killed, true);
  assert.equal('flags' in none.file, false, 'an unlink has no open flags');

  const hostile = Uint8Array.from([...enc.encode('/tmp/x'), 0xff, 0x0a, 0x1b]);
  const e = decode(fileRecord(KRSI_EVENT_FILE_UNLINK, hostile, ref(KRSI_PHOOK_FILE_UNLINK, 'deny')));
  assert.ok(e.kind === 'file_unlink');
  assert.deepEqual([...Buffer.from(e.file.path_base64 ?? '', 'base64')], [...hostile]);
  assert.doesNotMatch(formatText(e), /[\n\x1b]/, 'the terminal rendering escapes control characters');
});

test('a path length beyond the bytes that arrived is clamped, never trusted', () => {
  const view = fileRecord(KRSI_EVENT_FILE_OPEN, enc.encode('/a/b'), ref(KRSI_PHOOK_FILE_OPEN, 'deny'));
  view.setUint16(KrsiFileEventLayout.fields.path_len.offset, 4000, true);
  const e = decode(view);
  assert.ok(e.kind === 'file_open');
  assert.equal(e.file.path, '/a/b');
});

interface MountSpec {
  fstype: string;
  source?: string;
  mountpoint?: string;
  flags: number;
  bdev?: number;
}

function mountRecord(spec: MountSpec, policy: KrsiPolicyRef): DataView {
  const data = new Uint8Array(KRSI_MOUNT_DATA_MAX);
  const parts = [z(spec.fstype), spec.source === undefined ? new Uint8Array() : z(spec.source), spec.mountpoint === undefined ? new Uint8Array() : z(spec.mountpoint)];
  let off = 0;
  for (const p of parts) {
    data.set(p, off);
    off += p.length;
  }
  const size = KrsiMountEventLayout.fields.data.offset + off;
  return truncated(
    encodeKrsiMountEvent({
      hdr: hdr(KRSI_EVENT_MOUNT, size),
      task,
      policy,
      dev: spec.bdev ?? 42,
      bdev: spec.bdev ?? 0,
      sbFlags: 1,
      mountFlags: 0x8000,
      flags: spec.flags,
      fstypeLen: parts[0]!.length,
      sourceLen: parts[1]!.length,
      mountpointLen: parts[2]!.length,
      busLen: 0,
      data,
    }),
    size,
  );
}

test('a mount(2): fstype, source, mountpoint, devices and flags', () => {
  const e = decode(
    mountRecord(
      { fstype: 'ext4', source: '/dev/loop0', mountpoint: '/mnt/x', bdev: (7 << 20) | 0, flags: KRSI_MOUNT_API_MOUNT | KRSI_MOUNT_SOURCE_KNOWN | KRSI_MOUNT_MOUNTPOINT_KNOWN },
      ref(KRSI_PHOOK_MOUNT, 'deny'),
    ),
  );
  assert.ok(e.kind === 'mount');
  assert.deepEqual(e.mount, {
    fstype: 'ext4',
    source: '/dev/loop0',
    source_truncated: false,
    mountpoint: '/mnt/x',
    device: '7:0',
    block_device: '7:0',
    api: 'mount',
    flags: 0x8000,
    sb_flags: 1,
    read_only: true,
    bus: [],
    removable: false,
  });
  assert.match(formatText(e), /mount DENIED .*ext4 \/dev\/loop0 on \/mnt\/x dev=7:0/);
});

test('a new-API mount: no mountpoint yet, no flags, a source only when known', () => {
  const known = decode(mountRecord({ fstype: 'tmpfs', source: 'x', flags: KRSI_MOUNT_API_FSCONFIG | KRSI_MOUNT_SOURCE_KNOWN }, ref(KRSI_PHOOK_MOUNT, 'audit')));
  assert.ok(known.kind === 'mount');
  assert.equal(known.mount.api, 'fsconfig');
  assert.equal(known.mount.source, 'x');
  assert.equal(known.mount.mountpoint, null);
  assert.equal(known.mount.flags, null);
  assert.equal(known.mount.device, '0:42');
  assert.equal(known.mount.block_device, null);
  const unknown = decode(mountRecord({ fstype: 'tmpfs', flags: 0 }, ref(KRSI_PHOOK_MOUNT, 'default-deny')));
  assert.ok(unknown.kind === 'mount');
  assert.equal(unknown.mount.api, 'unknown');
  assert.equal(unknown.mount.source, null);
  assert.equal(unknown.policy.decided_by, 'default');
  assert.equal(unknown.policy.default, 'deny');
});

function moduleRecord(source: number, name: string | null, path: string | null, policy: KrsiPolicyRef): DataView {
  const data = new Uint8Array(KRSI_MODULE_DATA_MAX);
  const n = name === null ? new Uint8Array() : z(name);
  const p = path === null ? new Uint8Array() : z(path);
  data.set(n);
  data.set(p, n.length);
  const size = KrsiModuleEventLayout.fields.data.offset + n.length + p.length;
  return truncated(
    encodeKrsiModuleEvent({
      hdr: hdr(KRSI_EVENT_MODULE_LOAD, size),
      task,
      policy,
      ino: 12n,
      dev: (254 << 20) | 1,
      source,
      flags: name === null ? KRSI_MODULE_NAME_UNKNOWN : 0,
      nameLen: n.length,
      pathLen: p.length,
      sha256: new Uint8Array(32),
      size: 0n,
      data,
    }),
    size,
  );
}

test('a module from a file: name, path and identity', () => {
  const e = decode(moduleRecord(KRSI_MODULE_FROM_FILE, 'dummy', '/lib/modules/6.1.0/kernel/drivers/net/dummy.ko', ref(KRSI_PHOOK_MODULE_LOAD, 'deny')));
  assert.ok(e.kind === 'module_load');
  assert.deepEqual(e.module, { name: 'dummy', source: 'file', path: '/lib/modules/6.1.0/kernel/drivers/net/dummy.ko', dev: '254:1', ino: '12', sha256: null, size: 0 });
});

test('a module from memory: no file; a name only when the image had one', () => {
  const named = decode(moduleRecord(KRSI_MODULE_FROM_MEMORY, 'veth', null, ref(KRSI_PHOOK_MODULE_LOAD, 'audit')));
  assert.ok(named.kind === 'module_load');
  assert.deepEqual(named.module, { name: 'veth', source: 'memory', path: null, dev: null, ino: null, sha256: null, size: 0 });
  const anonymous = decode(moduleRecord(KRSI_MODULE_FROM_MEMORY, null, null, ref(KRSI_PHOOK_MODULE_LOAD, 'deny')));
  assert.ok(anonymous.kind === 'module_load');
  assert.equal(anonymous.module.name, null);
  assert.match(formatText(anonymous), /\(unknown name\) from memory/);
});

function connectRecord(family: number, addr: number[], port: number, known: boolean, policy: KrsiPolicyRef): DataView {
  const a = new Uint8Array(16);
  a.set(addr);
  return encodeKrsiConnectEvent({
    hdr: hdr(KRSI_EVENT_CONNECT, KrsiConnectEventLayout.size),
    task,
    policy,
    addr: a,
    family,
    port,
    type: 1,
    protocol: 6,
    flags: known ? KRSI_CONNECT_ADDRESS_KNOWN : 0,
  });
}

test('connects: IPv4 (mapped in the record), IPv6, and families without an address', () => {
  const v4 = decode(connectRecord(2, [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 1, 2, 3], 443, true, ref(KRSI_PHOOK_CONNECT, 'deny')));
  assert.ok(v4.kind === 'connect');
  assert.deepEqual(v4.connect, { family: 'inet', address: '10.1.2.3', port: 443, socket_type: 'stream', protocol: 6 });
  assert.match(formatText(v4), /connect DENIED .* 10\.1\.2\.3:443 stream/);
  const v6 = decode(connectRecord(10, [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1], 22, true, ref(KRSI_PHOOK_CONNECT, 'audit')));
  assert.ok(v6.kind === 'connect');
  assert.equal(v6.connect.address, '2001:db8::1');
  assert.match(formatText(v6), /\[2001:db8::1\]:22/);
  const unix = decode(connectRecord(1, [], 0, false, ref(KRSI_PHOOK_CONNECT, 'default-deny')));
  assert.ok(unix.kind === 'connect');
  assert.deepEqual(unix.connect, { family: 'unix', address: null, port: null, socket_type: 'stream', protocol: 6 });
});

test('addresses as RFC 5952 writes them', () => {
  const bytes = (...groups: number[]): Uint8Array => Uint8Array.from(groups.flatMap((g) => [g >> 8, g & 0xff]));
  assert.equal(formatAddress(bytes(0, 0, 0, 0, 0, 0, 0, 1), 10), '::1');
  assert.equal(formatAddress(bytes(0, 0, 0, 0, 0, 0, 0, 0), 10), '::');
  assert.equal(formatAddress(bytes(0x2001, 0xdb8, 0, 0, 1, 0, 0, 1), 10), '2001:db8::1:0:0:1', 'the first of two equal runs');
  assert.equal(formatAddress(bytes(0x2001, 0xdb8, 0, 1, 1, 1, 1, 1), 10), '2001:db8:0:1:1:1:1:1', 'one zero group is not shortened');
  assert.equal(formatAddress(bytes(0xfe80, 0, 0, 0, 0xabcd, 0, 0, 0), 10), 'fe80::abcd:0:0:0');
  assert.equal(formatAddress(bytes(0, 0, 0, 0, 0, 0xffff, 0x7f00, 1), 10), '::ffff:127.0.0.1', 'a v4-mapped IPv6 destination');
  assert.equal(formatAddress(bytes(0, 0, 0, 0, 0, 0xffff, 0x7f00, 1), 2), '127.0.0.1');
  assert.equal(familyName(2), 'inet');
  assert.equal(familyName(99), 'af_99');
});

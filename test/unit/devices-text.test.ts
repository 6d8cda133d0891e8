import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isoNs } from '../../src/events/clock.js';
import { formatDevice, fromKernelDev, fromStatDev, toKernelDev } from '../../src/events/devices.js';
import { formatText } from '../../src/events/format.js';
import type { ExecEvent } from '../../src/events/schema.js';
import { cString, decodeText, printable, splitNulTerminated } from '../../src/events/text.js';

test('stat st_dev and kernel dev_t encode the same device', () => {
  // glibc makedev(259, 65536 + 3): major above 255, minor above 255.
  const major = 259n;
  const minor = 65539n;
  const stDev = ((major & 0xfffn) << 8n) | ((major & ~0xfffn) << 32n) | (minor & 0xffn) | ((minor & ~0xffn) << 12n);
  const dev = fromStatDev(stDev);
  assert.deepEqual(dev, { major: 259, minor: 65539 });
  assert.deepEqual(fromKernelDev(toKernelDev(dev)), dev);
  assert.equal(formatDevice(fromKernelDev((8 << 20) | 17)), '8:17');
  assert.throws(() => toKernelDev({ major: 5000, minor: 0 }), RangeError);
});

test('C strings and NUL-separated lists', () => {
  const enc = new TextEncoder();
  assert.equal(new TextDecoder().decode(cString(enc.encode('abc\0junk'))), 'abc');
  assert.deepEqual(
    splitNulTerminated(enc.encode('a\0bc\0\0d')).map((b) => new TextDecoder().decode(b)),
    ['a', 'bc', '', 'd'],
  );
  assert.deepEqual(decodeText(enc.encode('ok')), { text: 'ok' });
  assert.ok(decodeText(Uint8Array.from([0xc3])).base64);
});

test('terminal rendering escapes control characters', () => {
  assert.equal(printable('a\x1b[2Jb\r\n'), 'a\\x1b[2Jb\\x0d\\x0a');
  const event: ExecEvent = {
    schema: 'krsi/v1',
    kind: 'exec',
    time: isoNs(1_700_000_000_123_456_789n),
    decision: 'denied',
    policy: {
      generation: 1,
      decided_by: 'rule',
      rule: { policy: 'p', rule: 'r', action: 'deny', mode: 'enforce' },
      default: null,
      would_deny: null,
      default_would_deny: false,
      audit: null,
      matched: ['p/r'],
      secureexec: false,
      killed: false,
      context_unknown: false,
    },
    process: { pid: 1, tid: 1, ppid: 0, uid: 0, gid: 0, euid: 0, egid: 0, comm: 'sh', cgroup_id: '1', start_boottime_ns: '0' },
    exec: {
      path: '/tmp/evil\x1b]0;pwned\x07',
      path_unresolved: false,
      filename: 'x',
      filename_truncated: false,
      dev: '0:1',
      ino: '2',
      argc: 2,
      argv: ['x', "it's"],
      argv_truncated: false,
      argv_unreadable: false,
    },
  };
  const line = formatText(event);
  assert.doesNotMatch(line, /[\x00-\x1f]/);
  assert.match(line, /DENIED/);
  assert.match(line, /argv: x 'it'\\''s'/);
  assert.equal(event.time, '2023-11-14T22:13:20.123456789Z');
});

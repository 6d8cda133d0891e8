// The serial-port filter: boot noise kept aside, "\r\n" undone, the end
// sentinel and what follows it dropped, however the bytes are chunked.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { endSentinelPrefix, GuestOutputFilter, heldBackLength, startSentinel, undoCrlf } from '../../src/vm/console.js';

const token = '0123456789abcdef';
const start = startSentinel(token);
const end = (status: number): string => `${endSentinelPrefix(token)}${status}@@`;

/** Feeds `stream` in pieces cut at `cuts` and returns what came out. */
function run(stream: string | Buffer, cuts: readonly number[]): { out: Buffer; filter: GuestOutputFilter; emits: number } {
  const bytes = typeof stream === 'string' ? Buffer.from(stream, 'utf8') : stream;
  const out: Buffer[] = [];
  const filter = new GuestOutputFilter(token, (b) => out.push(b));
  let from = 0;
  for (const cut of [...cuts, bytes.length]) {
    filter.push(bytes.subarray(from, cut));
    from = cut;
  }
  filter.end();
  return { out: Buffer.concat(out), filter, emits: out.length };
}

const boot = 'SeaBIOS (version 1.16)\r\nBooting from ROM..\r\n[    1.0] Run /init as init process\r\n';

test('only the command output between the sentinels comes out, with CRLF undone', () => {
  const stream = `${boot}${start}\r\nhello\r\nworld\r\n${end(7)}\r\n[ 9.1] reboot: Power down\r\n`;
  const { out, filter } = run(stream, []);
  assert.equal(out.toString(), 'hello\nworld\n');
  assert.equal(filter.endStatus, 7);
  assert.equal(filter.currentPhase, 'finished');
  assert.match(filter.bootLog, /SeaBIOS/);
  assert.doesNotMatch(filter.bootLog, /\r/);
});

test('every way of cutting the stream into two or three chunks gives the same result', () => {
  const stream = `${boot}${start}\r\nline one\r\n\u00e9t\u00e9 \u{1f600}\r\nno newline at the end${end(42)}\r\nafter`;
  const expected = 'line one\n\u00e9t\u00e9 \u{1f600}\nno newline at the end';
  const length = Buffer.byteLength(stream);
  for (let a = 0; a <= length; a++) {
    const single = run(stream, [a]);
    assert.equal(single.out.toString('utf8'), expected, `cut at ${a}`);
    assert.equal(single.filter.endStatus, 42, `cut at ${a}`);
  }
  for (let a = 0; a <= length; a += 7) {
    for (let b = a; b <= length; b += 5) {
      assert.equal(run(stream, [a, b]).out.toString('utf8'), expected, `cuts at ${a}, ${b}`);
    }
  }
});

test('byte by byte: still exact, and no sentinel text leaks', () => {
  const stream = `${boot}${start}\r\n@@ looks like a marker @@KRSI but is not\r\n${end(0)}\r\n`;
  const bytes = Buffer.from(stream);
  const { out, filter } = run(bytes, Array.from({ length: bytes.length }, (_, i) => i));
  assert.equal(out.toString(), '@@ looks like a marker @@KRSI but is not\n');
  assert.equal(filter.endStatus, 0);
});

test('a program that writes "\\r\\n" itself gets its "\\r\\n" back (the tty sent "\\r\\r\\n")', () => {
  const { out } = run(`${start}\r\nwindows\r\r\nprogress 50%\rprogress 100%\r\n${end(0)}\r\n`, [20, 30]);
  assert.equal(out.toString(), 'windows\r\nprogress 50%\rprogress 100%\n');
});

test('output is passed on as it arrives, not held until a line ends', () => {
  const out: string[] = [];
  const filter = new GuestOutputFilter(token, (b) => out.push(b.toString()));
  filter.push(`${start}\r\n`);
  filter.push('partial line without newline');
  assert.deepEqual(out, ['partial line without newline']);
  filter.push('\r');
  filter.push('\nnext');
  assert.equal(out.join(''), 'partial line without newline\nnext');
});

test('a stream that never starts is all boot log; one that never ends is all output', () => {
  const noStart = run(`${boot}Kernel panic - not syncing\r\n`, [10]);
  assert.equal(noStart.out.length, 0);
  assert.equal(noStart.filter.currentPhase, 'booting');
  assert.match(noStart.filter.bootLog, /Kernel panic/);

  const noEnd = run(`${start}\r\nrunning\r\n@@KRSI-VM`, [5]);
  assert.equal(noEnd.out.toString(), 'running\n@@KRSI-VM');
  assert.equal(noEnd.filter.currentPhase, 'running');
  assert.equal(noEnd.filter.endStatus, undefined);
});

test('sentinels of another run (another token) are ordinary output', () => {
  const other = `${endSentinelPrefix('ffffffffffffffff')}1@@`;
  const { out, filter } = run(`${start}\n${other}\n${end(3)}\n`, []);
  assert.equal(out.toString(), `${other}\n`);
  assert.equal(filter.endStatus, 3);
});

test('helpers: undoCrlf and heldBackLength', () => {
  assert.equal(undoCrlf('a\r\nb\r\r\nc\r'), 'a\nb\r\nc\r');
  assert.equal(heldBackLength('text @@KR', '@@KRSI'), 4);
  assert.equal(heldBackLength('text @', '@@KRSI'), 1);
  assert.equal(heldBackLength('text\r', '@@KRSI'), 1);
  assert.equal(heldBackLength('text', '@@KRSI'), 0);
});

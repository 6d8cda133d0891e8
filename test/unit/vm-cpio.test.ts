// The initramfs writer: what it writes must read back entry by entry, both
// with an independent parser here and, where installed, with GNU cpio.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readlinkSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { writeCpio, type CpioEntry } from '../../src/vm/cpio.js';

interface ParsedEntry {
  name: string;
  ino: number;
  mode: number;
  uid: number;
  gid: number;
  nlink: number;
  mtime: number;
  data: Buffer;
  rdevMajor: number;
  rdevMinor: number;
}

function parseNewc(archive: Buffer): ParsedEntry[] {
  const entries: ParsedEntry[] = [];
  let at = 0;
  const align = (n: number): number => (n + 3) & ~3;
  for (;;) {
    assert.equal(archive.toString('ascii', at, at + 6), '070701', `magic at ${at}`);
    const field = (i: number): number => parseInt(archive.toString('ascii', at + 6 + i * 8, at + 14 + i * 8), 16);
    const nameSize = field(11);
    const fileSize = field(6);
    const name = archive.toString('utf8', at + 110, at + 110 + nameSize - 1);
    assert.equal(archive[at + 110 + nameSize - 1], 0, 'name is NUL-terminated');
    const dataStart = align(at + 110 + nameSize);
    const entry: ParsedEntry = {
      name,
      ino: field(0),
      mode: field(1),
      uid: field(2),
      gid: field(3),
      nlink: field(4),
      mtime: field(5),
      data: archive.subarray(dataStart, dataStart + fileSize),
      rdevMajor: field(9),
      rdevMinor: field(10),
    };
    at = align(dataStart + fileSize);
    if (name === 'TRAILER!!!') break;
    entries.push(entry);
  }
  assert.equal(at, archive.length, 'nothing after the trailer');
  return entries;
}

const sample: CpioEntry[] = [
  { kind: 'directory', path: 'bin' },
  { kind: 'file', path: 'bin/tool', data: Buffer.from('#!/bin/sh\necho hi\n'), mode: 0o755 },
  { kind: 'symlink', path: 'bin/sh', target: 'tool' },
  { kind: 'directory', path: 'dev', mode: 0o700 },
  { kind: 'characterDevice', path: 'dev/console', major: 5, minor: 1 },
  // Sizes 0..4 cover every padding case.
  { kind: 'file', path: 'a', data: Buffer.alloc(0) },
  { kind: 'file', path: 'ab', data: Buffer.from('x') },
  { kind: 'file', path: 'abc', data: Buffer.from('xy') },
  { kind: 'file', path: 'abcd', data: Buffer.from('xyz') },
  { kind: 'file', path: '/init', data: Buffer.from('wxyz'), mode: 0o755 },
];

test('every entry reads back with its type, mode, content, and zero owner and mtime', () => {
  const parsed = parseNewc(writeCpio(sample));
  assert.deepEqual(
    parsed.map((e) => e.name),
    ['bin', 'bin/tool', 'bin/sh', 'dev', 'dev/console', 'a', 'ab', 'abc', 'abcd', 'init'],
  );
  const byName = new Map(parsed.map((e) => [e.name, e]));
  assert.equal(byName.get('bin')?.mode, 0o040755);
  assert.equal(byName.get('bin/tool')?.mode, 0o100755);
  assert.equal(byName.get('bin/tool')?.data.toString(), '#!/bin/sh\necho hi\n');
  assert.equal(byName.get('bin/sh')?.mode, 0o120777);
  assert.equal(byName.get('bin/sh')?.data.toString(), 'tool');
  assert.equal(byName.get('dev')?.mode, 0o040700);
  assert.deepEqual([byName.get('dev/console')?.mode, byName.get('dev/console')?.rdevMajor, byName.get('dev/console')?.rdevMinor], [0o020600, 5, 1]);
  assert.equal(byName.get('abcd')?.data.toString(), 'xyz');
  assert.equal(byName.get('a')?.mode, 0o100644);
  for (const e of parsed) {
    assert.deepEqual([e.uid, e.gid, e.mtime], [0, 0, 0], e.name);
  }
  assert.equal(new Set(parsed.map((e) => e.ino)).size, parsed.length, 'distinct inode numbers');
});

test('the same entries give the same bytes', () => {
  assert.ok(writeCpio(sample).equals(writeCpio(sample)));
});

test('an entry before its parent directory, a duplicate, or a bad path is refused', () => {
  assert.throws(() => writeCpio([{ kind: 'file', path: 'bin/x', data: Buffer.alloc(1) }]), /before its parent/);
  assert.throws(() => writeCpio([{ kind: 'directory', path: 'a' }, { kind: 'directory', path: 'a/' }]), /duplicate/);
  assert.throws(() => writeCpio([{ kind: 'directory', path: 'a/../b' }]), /invalid cpio path/);
  assert.throws(() => writeCpio([{ kind: 'directory', path: '/' }]), /invalid cpio path/);
});

test('GNU cpio lists and extracts the archive the same way', (t) => {
  if (spawnSync('cpio', ['--version']).status !== 0) {
    t.skip('cpio is not installed');
    return;
  }
  const archive = writeCpio(sample.filter((e) => e.kind !== 'characterDevice'));
  const listing = spawnSync('cpio', ['-t', '--quiet'], { input: archive });
  assert.equal(listing.status, 0, listing.stderr.toString());
  assert.deepEqual(listing.stdout.toString().trim().split('\n'), ['bin', 'bin/tool', 'bin/sh', 'dev', 'a', 'ab', 'abc', 'abcd', 'init']);

  const dir = mkdtempSync(join(tmpdir(), 'krsi-cpio-test-'));
  try {
    const extract = spawnSync('cpio', ['-i', '--quiet', '--no-absolute-filenames'], { input: archive, cwd: dir });
    assert.equal(extract.status, 0, extract.stderr.toString());
    assert.equal(readFileSync(join(dir, 'bin/tool'), 'utf8'), '#!/bin/sh\necho hi\n');
    assert.equal(statSync(join(dir, 'bin/tool')).mode & 0o777, 0o755);
    assert.equal(readlinkSync(join(dir, 'bin/sh')), 'tool');
    assert.equal(readFileSync(join(dir, 'abcd'), 'utf8'), 'xyz');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

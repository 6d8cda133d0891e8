// The hidden-module tracker (src/agent/module-watch.ts) on fake views of
// /proc/modules and /sys/module: what is reported, when, and what never is.
// The real thing (a module that hides itself) is test/vm/modules-mounts.test.ts.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { ModuleWatch, parseProcModules } from '../../src/agent/module-watch.js';
import type { ModuleStateRecord } from '../../src/events/module.js';
import type { ModuleHiddenEvent, ProcessInfo } from '../../src/events/schema.js';

const proc: ProcessInfo = {
  pid: 42,
  tid: 42,
  ppid: 1,
  uid: 0,
  gid: 0,
  euid: 0,
  egid: 0,
  comm: 'insmod',
  cgroup_id: '1',
  start_boottime_ns: '1000',
};

function record(state: 'loaded' | 'freed', name: string, taints = 0n): ModuleStateRecord {
  return { state, name, taints, timeNs: 5n, time: '2026-11-29T05:00:00.000000005Z', process: proc };
}

function views(): { dir: string; set: (names: string[], sysNames?: string[]) => void; watch: (events: ModuleHiddenEvent[], drain?: () => void) => ModuleWatch } {
  const dir = mkdtempSync('/tmp/krsi-modwatch-');
  const procModules = join(dir, 'modules');
  const sysModule = join(dir, 'sys');
  const set = (names: string[], sysNames = names): void => {
    writeFileSync(procModules, names.map((n) => `${n} 16384 0 - Live 0x0000000000000000 (OE)\n`).join(''));
    rmSync(sysModule, { recursive: true, force: true });
    mkdirSync(sysModule);
    for (const n of sysNames) mkdirSync(join(sysModule, n));
  };
  const watch = (events: ModuleHiddenEvent[], drain = (): void => {}): ModuleWatch =>
    new ModuleWatch({ emit: (e) => events.push(e), drain, intervalMs: 0, settleMs: 60_000, procModules, sysModule });
  return { dir, set, watch };
}

describe('ModuleWatch', () => {
  test('parseProcModules reads names and taint letters', () => {
    const m = parseProcModules('ext4 999424 1 - Live 0xffffffffc0400000\nkrsi_hide 12288 0 - Live 0xffffffffc0500000 (OE)\n');
    assert.deepEqual([...m.entries()], [
      ['ext4', []],
      ['krsi_hide', ['O', 'E']],
    ]);
  });

  test('a module loaded and then missing from both views is reported once, with when and by whom', (t) => {
    const v = views();
    t.after(() => rmSync(v.dir, { recursive: true, force: true }));
    const events: ModuleHiddenEvent[] = [];
    v.set(['ext4']);
    const w = v.watch(events);
    w.start();
    t.after(() => w.stop());
    w.onRecord(record('loaded', 'rootkit', (1n << 12n) | (1n << 13n)));
    v.set(['ext4', 'rootkit']);
    assert.deepEqual(w.check(), [], 'visible: nothing to report');
    v.set(['ext4']);
    const out = w.check();
    assert.equal(out.length, 1);
    assert.equal(out[0]!.module.name, 'rootkit');
    assert.deepEqual(out[0]!.module.missing_from, ['proc_modules', 'sysfs']);
    assert.equal(out[0]!.module.loaded_at, '2026-11-29T05:00:00.000000005Z');
    assert.deepEqual(out[0]!.module.taints, ['O', 'E']);
    assert.equal(out[0]!.process?.comm, 'insmod');
    assert.deepEqual(w.check(), [], 'reported once');
    assert.equal(events.length, 1);
  });

  test('missing from one view only: that view is named', (t) => {
    const v = views();
    t.after(() => rmSync(v.dir, { recursive: true, force: true }));
    const events: ModuleHiddenEvent[] = [];
    v.set([]);
    const w = v.watch(events);
    w.start();
    t.after(() => w.stop());
    w.onRecord(record('loaded', 'half'));
    v.set([], ['half']);
    assert.deepEqual(w.check()[0]?.module.missing_from, ['proc_modules']);
  });

  test('a module freed while the views were read is never reported (the rings are drained after reading)', (t) => {
    const v = views();
    t.after(() => rmSync(v.dir, { recursive: true, force: true }));
    const events: ModuleHiddenEvent[] = [];
    v.set(['ext4']);
    // The free record is still in the ring when check() reads the views.
    let w: ModuleWatch | null = null;
    w = v.watch(events, () => w?.onRecord(record('freed', 'dummy')));
    w.start();
    t.after(() => w?.stop());
    w.onRecord(record('loaded', 'dummy'));
    assert.deepEqual(w.check(), []);
    assert.deepEqual(w.loaded(), ['ext4']);
  });

  test('modules loaded before the start are tracked without a load time', (t) => {
    const v = views();
    t.after(() => rmSync(v.dir, { recursive: true, force: true }));
    const events: ModuleHiddenEvent[] = [];
    v.set(['ext4', 'old']);
    const w = v.watch(events);
    w.start();
    t.after(() => w.stop());
    v.set(['ext4']);
    const out = w.check();
    assert.equal(out[0]?.module.name, 'old');
    assert.equal(out[0]?.module.loaded_at, null);
    assert.equal(out[0]?.process, null);
  });

  test('a module loaded again after being reported is watched afresh', (t) => {
    const v = views();
    t.after(() => rmSync(v.dir, { recursive: true, force: true }));
    const events: ModuleHiddenEvent[] = [];
    v.set([]);
    const w = v.watch(events);
    w.start();
    t.after(() => w.stop());
    w.onRecord(record('loaded', 'x'));
    assert.equal(w.check().length, 1);
    w.onRecord(record('freed', 'x'));
    w.onRecord(record('loaded', 'x'));
    assert.equal(w.check().length, 1);
  });
});

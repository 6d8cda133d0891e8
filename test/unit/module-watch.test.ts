// The hidden-module tracker (src/agent/module-watch.ts) on fake views of
// /proc/modules and /sys/module: what is reported, when, and what never is.
// The real thing (a module that hides itself) is test/vm/modules-mounts.test.ts.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test, type TestContext } from 'node:test';
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

interface Views {
  dir: string;
  /** Writes both views; names in `loading` are listed in the Loading state. */
  set: (names: string[], sysNames?: string[], loading?: string[]) => void;
  watch: (events: ModuleHiddenEvent[], drain: () => void, confirmMs?: number) => ModuleWatch;
}

function views(): Views {
  const dir = mkdtempSync('/tmp/krsi-modwatch-');
  const procModules = join(dir, 'modules');
  const sysModule = join(dir, 'sys');
  const set = (names: string[], sysNames = names, loading: string[] = []): void => {
    const state = (n: string): string => (loading.includes(n) ? 'Loading' : 'Live');
    writeFileSync(procModules, names.map((n) => `${n} 16384 0 - ${state(n)} 0x0000000000000000 (OE)\n`).join(''));
    rmSync(sysModule, { recursive: true, force: true });
    mkdirSync(sysModule);
    for (const n of sysNames) mkdirSync(join(sysModule, n));
  };
  const watch = (events: ModuleHiddenEvent[], drain: () => void, confirmMs = 0): ModuleWatch =>
    new ModuleWatch({ emit: (e) => events.push(e), drain, intervalMs: 0, settleMs: 60_000, confirmMs, procModules, sysModule });
  return { dir, set, watch };
}

/** A started watch over fresh views listing `initial`, cleaned up after the test. */
function watching(
  t: TestContext,
  initial: string[],
  opts: { confirmMs?: number; drain?: (w: ModuleWatch) => void } = {},
): { v: Views; w: ModuleWatch; events: ModuleHiddenEvent[] } {
  const v = views();
  t.after(() => rmSync(v.dir, { recursive: true, force: true }));
  const events: ModuleHiddenEvent[] = [];
  v.set(initial);
  const w: ModuleWatch = v.watch(events, () => opts.drain?.(w), opts.confirmMs);
  w.start();
  t.after(() => w.stop());
  return { v, w, events };
}

describe('ModuleWatch', () => {
  test('parseProcModules reads names, states and taint letters', () => {
    const m = parseProcModules('ext4 999424 1 - Live 0xffffffffc0400000\nkrsi_hide 12288 0 - Loading 0xffffffffc0500000 (OE)\n');
    assert.deepEqual([...m.entries()], [
      ['ext4', { taints: [], loading: false }],
      ['krsi_hide', { taints: ['O', 'E'], loading: true }],
    ]);
  });

  test('a module still Loading without its sysfs object is judged only once its init has returned', (t) => {
    const { v, w } = watching(t, []);
    w.onRecord(record('loaded', 'fat'));
    v.set(['fat'], [], ['fat']);
    assert.deepEqual(w.check(), [], 'being set up: not judged');
    v.set(['fat']);
    assert.deepEqual(w.check(), [], 'set up: visible');
    v.set(['fat'], []);
    assert.deepEqual(w.check()[0]?.module.missing_from, ['sysfs'], 'live and missing: hidden');
  });

  test('missing only for a moment is not reported; missing for confirmMs is, by the check that follows', async (t) => {
    const { v, w, events } = watching(t, [], { confirmMs: 200 });
    w.onRecord(record('loaded', 'brief'));
    w.onRecord(record('loaded', 'rootkit'));
    // Neither is visible yet (the load tracepoint comes before /proc/modules lists them).
    assert.deepEqual(w.check(), []);
    v.set(['brief']);
    // The recheck confirmMs later reports the one that stayed missing, by itself.
    const deadline = Date.now() + 10_000;
    while (events.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(events.map((e) => e.module.name), ['rootkit']);
    assert.deepEqual(w.check(), [], 'brief is visible: never reported');
  });

  test('a module loaded and then missing from both views is reported once, with when and by whom', (t) => {
    const { v, w, events } = watching(t, ['ext4']);
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
    const { v, w } = watching(t, []);
    w.onRecord(record('loaded', 'half'));
    v.set([], ['half']);
    assert.deepEqual(w.check()[0]?.module.missing_from, ['proc_modules']);
  });

  test('a module freed while the views were read is never reported (the rings are drained after reading)', (t) => {
    // The free record is still in the ring when check() reads the views.
    const { w } = watching(t, ['ext4'], { drain: (watch) => watch.onRecord(record('freed', 'dummy')) });
    w.onRecord(record('loaded', 'dummy'));
    assert.deepEqual(w.check(), []);
    assert.deepEqual(w.loaded(), ['ext4']);
  });

  test('modules loaded before the start are tracked without a load time', (t) => {
    const { v, w } = watching(t, ['ext4', 'old']);
    v.set(['ext4']);
    const out = w.check();
    assert.equal(out[0]?.module.name, 'old');
    assert.equal(out[0]?.module.loaded_at, null);
    assert.equal(out[0]?.process, null);
  });

  test('a module loaded again after being reported is watched afresh', (t) => {
    const { w } = watching(t, []);
    w.onRecord(record('loaded', 'x'));
    assert.equal(w.check().length, 1);
    w.onRecord(record('freed', 'x'));
    w.onRecord(record('loaded', 'x'));
    assert.equal(w.check().length, 1);
  });
});

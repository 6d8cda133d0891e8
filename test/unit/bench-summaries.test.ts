// The exec benchmark's drift-free figure: krsi's BPF program time per exec.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execProgramTime } from '../../src/bench/summaries.js';
import type { ProgCost } from '../../src/bench/session.js';

const prog = (name: string, section: string, runCnt: number, avgNs: number, emptyName: string | null, emptyRunCnt: number, emptyAvgNs: number): ProgCost => ({
  name,
  section,
  runCnt,
  avgNs,
  emptyName,
  emptyRunCnt,
  emptyAvgNs,
});

test('program time per exec: exec-path hooks only, divided by the execs; one empty program per hook', () => {
  const r = execProgramTime([
    prog('exec_check', 'lsm/bprm_check_security', 100, 1000, 'empty_bprm_check', 100, 10),
    prog('exec_hash', 'lsm.s/bprm_check_security', 100, 50, 'empty_bprm_check', 100, 10),
    prog('lineage_fork', 'tp_btf/sched_process_fork', 100, 300, 'empty_fork', 100, 5),
    prog('mmap_check', 'lsm/mmap_file', 400, 100, 'empty_mmap', 400, 2),
    prog('file_open', 'lsm/file_open', 10_000, 500, 'empty_open', 10_000, 1),
    prog('module_read', 'lsm/kernel_read_file', 0, NaN, 'empty_krf', 0, NaN),
  ]);
  assert.ok(r);
  assert.equal(r.execs, 100);
  // (100*1000 + 100*50 + 100*300 + 400*100) / 100; file_open is not on the path.
  assert.equal(r.krsiNs, 1750);
  // empty: bprm_check once (100*10), fork 100*5, mmap 400*2, over 100 execs.
  assert.equal(r.emptyNs, 23);
});

test('program time per exec: none without exec runs', () => {
  assert.equal(execProgramTime([prog('exec_check', 'lsm/bprm_check_security', 0, NaN, null, 0, NaN)]), null);
  assert.equal(execProgramTime([]), null);
});

// The agent's fit to the kernel: every program declares what it needs, and
// a kernel without a feature leaves out exactly the programs that need it.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { native } from '../../src/bpf/native.js';
import { ALL_FEATURES, chooseVariants, PROGRAM_NEEDS, PROGRAM_VARIANTS, programsLeftOut } from '../../src/agent/kernel-features.js';
import { ruleStates } from '../../src/ops/rule-states.js';
import { bpfObjects } from '../../src/paths.js';
import type { Policy } from '../../src/policy/schema.js';

test('every program of krsi.bpf.o declares its needs', () => {
  const object = native.BpfObject.openFile(bpfObjects.agent);
  try {
    const variants = Object.values(PROGRAM_VARIANTS).map((v) => v.program);
    const names = object.programs().map((p) => p.name);
    assert.deepEqual(names.filter((n) => PROGRAM_NEEDS[n] === undefined && !variants.includes(n)), [], 'programs without a PROGRAM_NEEDS entry');
    assert.deepEqual(variants.filter((n) => !names.includes(n)), [], 'variants that are gone');
    for (const p of object.programs()) {
      const first = Object.entries(PROGRAM_VARIANTS).find(([, v]) => v.program === p.name)?.[0];
      if (first !== undefined) assert.equal(p.section, object.program(first).section, `${p.name} attaches where ${first} does`);
    }
    assert.deepEqual(Object.keys(PROGRAM_NEEDS).filter((n) => !names.includes(n)), [], 'entries of programs that are gone');
  } finally {
    object.close();
  }
});

test('a kernel with every feature leaves nothing out; one without bpf_loop leaves out the policy programs', () => {
  const all = Object.keys(PROGRAM_NEEDS);
  assert.equal(programsLeftOut(all, ALL_FEATURES).size, 0);
  const noLoop = programsLeftOut(all, { ...ALL_FEATURES, loop: false });
  assert.deepEqual(noLoop.get('exec_check'), ['loop']);
  assert.ok(!noLoop.has('lineage_fork') && !noLoop.has('self_exit') && !noLoop.has('module_loaded'));
  const old = programsLeftOut(all, { ...ALL_FEATURES, loop: false, taskStorage: false, currentTaskBtf: false, iterDPath: false });
  assert.deepEqual(old.get('file_open'), ['loop', 'taskStorage', 'currentTaskBtf']);
  assert.deepEqual([...all].filter((p) => !old.has(p)), ['self_exit']);
});

test('a rule whose program is left out is degraded, naming what the kernel lacks', () => {
  const policy = {
    apiVersion: 'krsi.dev/v1',
    kind: 'Policy',
    metadata: { name: 'p' },
    spec: { mode: 'enforce', lists: [], rules: [{ name: 'r', hook: 'exec', match: {}, action: 'deny' }] },
  } as unknown as Policy;
  const [state] = ruleStates([policy], {
    attached: new Set(),
    ima: true,
    lockPointReached: false,
    leftOut: new Map([['exec_check', 'the kernel lacks the bpf_loop helper']]),
  });
  assert.equal(state?.state, 'degraded');
  assert.equal(state?.reason, 'not attached on this kernel: exec_check (the kernel lacks the bpf_loop helper)');
});

test('the bpf hook programs: the 4-argument variants where bpf_lsm_bpf takes 4 (7.x), the others elsewhere', () => {
  const chosen = (args: number | undefined): string[] => [...chooseVariants((f) => (f === 'bpf_lsm_bpf' ? args : undefined)).values()];
  assert.deepEqual(chosen(3), ['bpf_load_check', 'self_bpf']);
  assert.deepEqual(chosen(4), ['bpf_load_check_k', 'self_bpf_k']);
  assert.deepEqual(chosen(undefined), ['bpf_load_check', 'self_bpf'], 'no BTF: the long-standing signature');
});

// Kernel-version gates for kernel tests: a test skips, with its reason, only
// when the running kernel is older than the feature's declared minimum; on a
// kernel that should have the feature it runs, and fails if it is broken.
import { release } from 'node:os';
import type { TestContext } from 'node:test';

export function kernelVersion(rel = release()): [number, number] {
  const m = /^(\d+)\.(\d+)/.exec(rel);
  if (!m) throw new Error(`cannot parse kernel release ${rel}`);
  return [Number(m[1]), Number(m[2])];
}

export function atLeast(min: string, rel = release()): boolean {
  const [maj, min_] = kernelVersion(rel);
  const [wantMaj, wantMin] = kernelVersion(min);
  return maj > wantMaj || (maj === wantMaj && min_ >= wantMin);
}

/** Skips t when the kernel predates `min`; returns whether the test should go on. */
export function requireKernel(t: TestContext, min: string, feature: string): boolean {
  if (atLeast(min)) return true;
  t.skip(`${feature} needs Linux ${min}; this is ${release()}`);
  return false;
}

export const inVm = process.env['KRSI_IN_VM'] === '1';

/**
 * The oldest kernel each capability of krsi's programs is in (the agent
 * probes for them, src/agent/kernel-features.ts; only the tests know versions).
 */
export const FEATURE_MINIMUMS = {
  lsmSleepable: '5.10',
  loop: '5.17',
  currentTaskBtf: '5.11',
  taskStorage: '5.11',
  iterDPath: '5.12',
} as const;

/**
 * krsi's policy programs (every enforcing hook, the exec and mount
 * bookkeeping): bpf_loop, task storage and bpf_get_current_task_btf.
 */
export const POLICY_PROGRAMS = { min: FEATURE_MINIMUMS.loop, feature: "krsi's policy programs (bpf_loop, task storage, bpf_get_current_task_btf)" } as const;

/**
 * The skip option of a VM suite: outside the VM it does not run; in it,
 * only below the declared minimum of what it tests, with the reason.
 */
export function vmSuite(min: string, feature: string, rel = release()): string | false {
  if (!inVm) return 'runs inside `krsi vm`';
  return atLeast(min, rel) ? false : `${feature} needs Linux ${min}; this is ${rel}`;
}

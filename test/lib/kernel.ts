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

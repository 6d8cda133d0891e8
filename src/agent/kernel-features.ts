// What krsi's programs need of the kernel, one feature probe per capability
// (as cilium/ebpf's features package does): the agent leaves out of the load
// every program whose needs the running kernel does not meet, so that the
// agent starts on an older kernel (5.10) with those programs' rules reported
// degraded, and why, instead of failing to load. Kernel versions are never
// checked here: only what the kernel accepts.
import { kernelFuncParamCount } from '../bpf/btf.js';
import { ALL_FEATURES, FEATURES, type Feature, type KernelFeatures } from '../bpf/features.js';
import { native, withoutLibbpfLog, type BpfObject } from '../bpf/native.js';
import { runProbes } from '../doctor/probes.js';
import type { ProgramVariant } from '../families/family.js';
import { PROGRAMS } from '../families/index.js';
import { log } from '../log.js';

export { ALL_FEATURES, FEATURES, type Feature, type KernelFeatures } from '../bpf/features.js';

/** Each program of krsi.bpf.o and the features it needs (its family's ProgramSpec.needs). */
export const PROGRAM_NEEDS: Readonly<Record<string, readonly Feature[]>> = Object.fromEntries(PROGRAMS.map((p) => [p.program, p.needs]));

/** The programs with a variant (ProgramSpec.variant), by first name. */
export const PROGRAM_VARIANTS: Readonly<Record<string, ProgramVariant>> = Object.fromEntries(
  PROGRAMS.flatMap((p) => (p.variant === undefined ? [] : [[p.program, p.variant] as const])),
);

const variantOf = new Map(Object.entries(PROGRAM_VARIANTS).map(([name, v]) => [v.program, name]));

/** For each program with variants, the one that fits the running kernel (by the first name). */
export function chooseVariants(paramCount: (func: string) => number | undefined = kernelFuncParamCount): Map<string, string> {
  const chosen = new Map<string, string>();
  const counts = new Map<string, number | undefined>();
  for (const [name, v] of Object.entries(PROGRAM_VARIANTS)) {
    // The kernel's BTF is read once per function, not once per program.
    if (!counts.has(v.func)) counts.set(v.func, paramCount(v.func));
    chosen.set(name, counts.get(v.func) === v.args ? v.program : name);
  }
  return chosen;
}

/** Probes each capability on the running kernel. */
export function probeKernelFeatures(): KernelFeatures {
  const probes = runProbes();
  // The probes are LSM programs: a kernel that refuses LSM programs
  // altogether (no BPF trampolines, as this project's host) fails them all
  // and has no feature to leave out for. Nothing is left out, and the load
  // fails with the kernel's own refusal (`krsi run` exits 3, naming it).
  if (!probes.lsm.ok) return ALL_FEATURES;
  let taskStorage = false;
  try {
    taskStorage = withoutLibbpfLog(() => native.probeMapType('task_storage'));
  } catch (err) {
    log.debug({ err: (err as Error).message }, 'the task storage probe failed');
  }
  return {
    lsmSleepable: probes.lsmSleepable.ok,
    loop: probes.loop.ok,
    currentTaskBtf: probes.currentTaskBtf.ok,
    taskStorage,
    iterDPath: probes.iterDPath.ok,
  };
}

/** The programs the kernel cannot load, each with the features it lacks. */
export function programsLeftOut(programs: readonly string[], features: KernelFeatures): Map<string, Feature[]> {
  const out = new Map<string, Feature[]>();
  for (const p of programs) {
    const missing = (PROGRAM_NEEDS[p] ?? []).filter((f) => !features[f]);
    if (missing.length > 0) out.set(p, missing);
  }
  return out;
}

export function describeMissing(missing: readonly Feature[]): string {
  return `the kernel lacks ${missing.map((f) => FEATURES[f]).join(', ')}`;
}

/**
 * Before load: leaves out the programs the kernel cannot load, the variants
 * that do not fit it, and the maps of types it cannot create (no program
 * left in uses them). Returns the programs left out and why, by first name.
 */
export function fitToKernel(
  object: BpfObject,
  features: KernelFeatures,
  variants: ReadonlyMap<string, string> = chooseVariants(),
): Map<string, Feature[]> {
  const leftOut = programsLeftOut(
    object.programs().map((p) => p.name).filter((n) => !variantOf.has(n)),
    features,
  );
  for (const p of object.programs()) {
    const name = variantOf.get(p.name) ?? p.name;
    if (leftOut.has(name) || (variants.get(name) ?? name) !== p.name) p.autoload = false;
  }
  if (!features.taskStorage) for (const m of object.maps()) if (m.type === 'task_storage') m.autocreate = false;
  return leftOut;
}

// What krsi's programs need of the kernel, one feature probe per capability
// (as cilium/ebpf's features package does): the agent leaves out of the load
// every program whose needs the running kernel does not meet, so that the
// agent starts on an older kernel (5.10) with those programs' rules reported
// degraded, and why, instead of failing to load. Kernel versions are never
// checked here: only what the kernel accepts.
import { kernelFuncParamCount } from '../bpf/btf.js';
import { native, withoutLibbpfLog, type BpfObject } from '../bpf/native.js';
import { runProbes } from '../doctor/probes.js';
import { log } from '../log.js';

export const FEATURES = {
  lsmSleepable: 'sleepable LSM programs (lsm.s/)',
  loop: 'the bpf_loop helper',
  currentTaskBtf: 'the bpf_get_current_task_btf helper',
  taskStorage: 'task storage maps',
  iterDPath: 'bpf_d_path in task iterators',
} as const;

export type Feature = keyof typeof FEATURES;
export type KernelFeatures = Record<Feature, boolean>;

/** Every capability the kernel has; what tests and callers pass to skip probing. */
export const ALL_FEATURES: KernelFeatures = { lsmSleepable: true, loop: true, currentTaskBtf: true, taskStorage: true, iterDPath: true };

/**
 * What the policy programs need: the policy engine (bpf/lib/policy.bpf.c)
 * walks with bpf_loop, keeps binary classes in task storage and reads the
 * current task through bpf_get_current_task_btf.
 */
const POLICY: readonly Feature[] = ['loop', 'taskStorage', 'currentTaskBtf'];

/** Each program of krsi.bpf.o and the features it needs, beyond BPF LSM, ring buffers and BTF. */
export const PROGRAM_NEEDS: Readonly<Record<string, readonly Feature[]>> = {
  lineage_fork: ['taskStorage'],
  exec_committed: POLICY,
  exec_env_scan: ['lsmSleepable', ...POLICY],
  mount_request: ['currentTaskBtf', 'taskStorage'],
  module_loaded: ['currentTaskBtf'],
  module_freed: ['currentTaskBtf'],
  exec_check: POLICY,
  exec_hash: ['lsmSleepable', ...POLICY],
  file_open: POLICY,
  file_unlink: POLICY,
  file_rename: POLICY,
  mount_check: POLICY,
  module_read: POLICY,
  module_hash: ['lsmSleepable', ...POLICY],
  module_data: POLICY,
  connect_check: POLICY,
  mmap_check: POLICY,
  mmap_hash: ['lsmSleepable', ...POLICY],
  mprotect_check: POLICY,
  ptrace_attach: POLICY,
  ptrace_traceme: POLICY,
  bpf_load_check: POLICY,
  setuid_check: POLICY,
  setgid_check: POLICY,
  proc_snapshot: ['iterDPath'],
  // Self-protection reports the attempts it denies with the task's identity.
  self_task_kill: ['currentTaskBtf'],
  self_ptrace: ['currentTaskBtf'],
  self_bpf: ['currentTaskBtf'],
  self_bpf_map: ['currentTaskBtf'],
  self_bpf_prog: ['currentTaskBtf'],
  self_unlink: ['currentTaskBtf'],
  self_rmdir: ['currentTaskBtf'],
  self_rename: ['currentTaskBtf'],
  self_umount: ['currentTaskBtf'],
  self_exit: [],
};

/**
 * Programs written twice because the kernel changed their hook's arguments
 * (a program reads them by position, the earlier LSM's ret last). The
 * variant is loaded where the hook's BTF function, the attach target whose
 * prototype the verifier gives the program, has `args` parameters; the first
 * name everywhere else. Status, pins and rules know only the first name.
 */
export const PROGRAM_VARIANTS: Readonly<Record<string, { variant: string; func: string; args: number }>> = {
  // 7.x's bpf hook has a 4th argument, `bool kernel`, before ret.
  bpf_load_check: { variant: 'bpf_load_check_k', func: 'bpf_lsm_bpf', args: 4 },
  self_bpf: { variant: 'self_bpf_k', func: 'bpf_lsm_bpf', args: 4 },
};

const variantOf = new Map(Object.entries(PROGRAM_VARIANTS).map(([name, v]) => [v.variant, name]));

/** For each program with variants, the one that fits the running kernel (by the first name). */
export function chooseVariants(paramCount: (func: string) => number | undefined = kernelFuncParamCount): Map<string, string> {
  const chosen = new Map<string, string>();
  for (const [name, v] of Object.entries(PROGRAM_VARIANTS)) chosen.set(name, paramCount(v.func) === v.args ? v.variant : name);
  return chosen;
}

/** Probes each capability on the running kernel. */
export function probeKernelFeatures(): KernelFeatures {
  const probes = runProbes();
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

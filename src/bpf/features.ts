// The kernel capabilities krsi's programs may need beyond BPF LSM, ring
// buffers and BTF, one name each (src/agent/kernel-features.ts probes them).
// Each program declares its needs in its family (src/families/).

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

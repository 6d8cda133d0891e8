// Loads and attaches the probe programs of build/bpf/probe.bpf.o, so the
// doctor reports what this kernel accepts, not what it advertises.
import { native, withoutLibbpfLog, type BpfObject } from '../bpf/native.js';
import { bpfObjects } from '../paths.js';

export interface ProbeResult {
  ok: boolean;
  /** The step that failed: open, load or attach. */
  step?: 'open' | 'load' | 'attach';
  code?: string;
  message?: string;
  /** What libbpf printed while loading, the verifier log included. */
  log?: string;
}

export const probePrograms = {
  lsm: 'probe_lsm',
  lsmSleepable: 'probe_lsm_sleepable',
  tracepoint: 'probe_tracepoint',
  ringbuf: 'probe_ringbuf',
  loop: 'probe_loop',
  currentTaskBtf: 'probe_current_task_btf',
  iterDPath: 'probe_iter_d_path',
} as const;

export type ProbeName = keyof typeof probePrograms;
const probeNames = Object.keys(probePrograms) as ProbeName[];

function failure(step: ProbeResult['step'] & string, err: unknown): ProbeResult {
  const e = err as Error & { code?: string; libbpfLog?: string };
  return {
    ok: false,
    step,
    ...(e.code === undefined ? {} : { code: e.code }),
    message: e.message.split('\n')[0] ?? '',
    ...(e.libbpfLog === undefined ? {} : { log: e.libbpfLog }),
  };
}

/** Opens the probe object with only `names` to be loaded, and loads it. */
function loadProbes(objectPath: string, names: readonly ProbeName[]): { object: BpfObject } | ProbeResult {
  let object: BpfObject;
  try {
    object = native.BpfObject.openFile(objectPath);
  } catch (err) {
    return failure('open', err);
  }
  const wanted = new Set<string>(names.map((n) => probePrograms[n]));
  try {
    for (const p of object.programs()) p.autoload = wanted.has(p.name);
    object.load();
    return { object };
  } catch (err) {
    object.close();
    return failure('load', err);
  }
}

function attachProbe(object: BpfObject, name: ProbeName): ProbeResult {
  try {
    object.program(probePrograms[name]).attach().close();
    return { ok: true };
  } catch (err) {
    return failure('attach', err);
  }
}

/**
 * Runs every probe. Loading costs most (libbpf parses the kernel's BTF for
 * each object), so all probes are loaded together first; only if that fails
 * is each loaded on its own, to tell which one the kernel refuses.
 */
export function runProbes(objectPath = bpfObjects.probe): Record<ProbeName, ProbeResult> {
  return withoutLibbpfLog(() => {
    const results = {} as Record<ProbeName, ProbeResult>;
    const all = loadProbes(objectPath, probeNames);
    if ('object' in all) {
      try {
        for (const name of probeNames) results[name] = attachProbe(all.object, name);
      } finally {
        all.object.close();
      }
      return results;
    }
    for (const name of probeNames) {
      const one = loadProbes(objectPath, [name]);
      if ('object' in one) {
        try {
          results[name] = attachProbe(one.object, name);
        } finally {
          one.object.close();
        }
      } else {
        results[name] = one;
      }
    }
    return results;
  });
}

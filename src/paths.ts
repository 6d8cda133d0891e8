// Where krsi's own files are, whether it runs from src/ (tsx) or dist/.
import { fileURLToPath } from 'node:url';

/** The package root: the directory holding package.json. */
export const packageRoot = fileURLToPath(new URL('../', import.meta.url));

export const bpfObjects = {
  /** Every hook's program, linked into one object (Makefile). */
  agent: `${packageRoot}build/bpf/krsi.bpf.o`,
  /** The doctor's feature probes. */
  probe: `${packageRoot}build/bpf/probe.bpf.o`,
} as const;

/** Where pinned links and maps live in bpffs. */
export const bpffsRoot = '/sys/fs/bpf/krsi';

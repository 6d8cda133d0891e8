// Where krsi's own files are, whether it runs from src/ (tsx), dist/ (tsc)
// or a bundle (dist/bundle, build/test-vm): the package root is the nearest
// directory above this module that holds krsi's package.json.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

function findPackageRoot(from: string): string {
  for (let dir = from; ; dir = dirname(dir)) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: unknown };
      if (pkg.name === 'krsi') return `${dir}/`;
    } catch {
      // no package.json here, or not ours: look further up
    }
    if (dirname(dir) === dir) throw new Error(`krsi: no package.json of krsi above ${from}`);
  }
}

/** The package root, with a trailing slash. */
export const packageRoot = findPackageRoot(dirname(fileURLToPath(import.meta.url)));

export const bpfObjects = {
  /** Every hook's program, linked into one object (Makefile). */
  agent: `${packageRoot}build/bpf/krsi.bpf.o`,
  /** The doctor's feature probes. */
  probe: `${packageRoot}build/bpf/probe.bpf.o`,
} as const;

/** Where pinned links and maps live in bpffs. */
export const bpffsRoot = '/sys/fs/bpf/krsi';

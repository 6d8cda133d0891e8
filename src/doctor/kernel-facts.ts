// What the running kernel says about itself: version, active LSMs, lockdown,
// BTF, and its build configuration where it publishes it.
import { existsSync, readFileSync } from 'node:fs';
import { release } from 'node:os';
import { gunzipSync } from 'node:zlib';
import { ensureMounted, securityfs } from '../system/mounts.js';

export interface KernelFacts {
  release: string;
  /** Active LSMs in order, or null when securityfs could not be read. */
  lsms: string[] | null;
  /** The selected lockdown mode (none, integrity, confidentiality), null when unknown. */
  lockdown: string | null;
  btf: boolean;
  /** CONFIG_BPF_LSM from the kernel's config, null when no config is published. */
  configBpfLsm: boolean | null;
  /** Notes about how the facts were obtained (a mount krsi made, a file missing). */
  notes: string[];
}

function readKernelConfig(rel: string): string | null {
  if (existsSync('/proc/config.gz')) return gunzipSync(readFileSync('/proc/config.gz')).toString('utf8');
  const boot = `/boot/config-${rel}`;
  return existsSync(boot) ? readFileSync(boot, 'utf8') : null;
}

export function readKernelFacts(): KernelFacts {
  const notes: string[] = [];
  const rel = release();
  let lsms: string[] | null = null;
  let lockdown: string | null = null;
  try {
    if (ensureMounted(securityfs)) notes.push(`mounted securityfs on ${securityfs.target}`);
    lsms = readFileSync(`${securityfs.target}/lsm`, 'utf8').trim().split(',').filter(Boolean);
    const ld = `${securityfs.target}/lockdown`;
    if (existsSync(ld)) lockdown = /\[(\w+)\]/.exec(readFileSync(ld, 'utf8'))?.[1] ?? null;
  } catch (err) {
    notes.push(`securityfs unreadable: ${(err as Error).message.split('\n')[0]}`);
  }
  const config = readKernelConfig(rel);
  const configBpfLsm = config === null ? null : /^CONFIG_BPF_LSM=y$/m.test(config);
  return { release: rel, lsms, lockdown, btf: existsSync('/sys/kernel/btf/vmlinux'), configBpfLsm, notes };
}

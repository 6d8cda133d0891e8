// The pseudo file systems BPF LSM work needs. Some hosts do not mount them at
// boot; krsi mounts what is missing, as root, and says so.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

export interface PseudoFs {
  type: string;
  target: string;
}

export const securityfs: PseudoFs = { type: 'securityfs', target: '/sys/kernel/security' };
export const bpffs: PseudoFs = { type: 'bpf', target: '/sys/fs/bpf' };
export const tracefs: PseudoFs = { type: 'tracefs', target: '/sys/kernel/tracing' };

export function isMounted(fs: PseudoFs): boolean {
  const mounts = readFileSync('/proc/self/mounts', 'utf8');
  return mounts.split('\n').some((line) => {
    const [, target, type] = line.split(' ');
    return target === fs.target && type === fs.type;
  });
}

/** Mounts fs if it is not; returns whether this call mounted it. */
export function ensureMounted(fs: PseudoFs): boolean {
  if (isMounted(fs)) return false;
  execFileSync('mount', ['-t', fs.type, fs.type, fs.target], { stdio: ['ignore', 'ignore', 'pipe'] });
  return true;
}

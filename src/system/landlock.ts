// The agent confines itself with Landlock: it may read anything (it hashes
// binaries and reads /proc), write only where it keeps its state (its list
// store and state file, its control socket, its pins in bpffs), and execute
// nothing but node itself.
//
// Landlock restricts the thread that asks and what it later creates, but
// Node starts its threads (libuv's pool, V8's workers) before any script
// runs. So the agent restricts its main thread and re-executes itself: the
// new image starts single-threaded inside the Landlock domain, and every
// thread it then starts is confined too.
import { mkdirSync, openSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { native } from '../bpf/native.js';
import { log } from '../log.js';

const MARK = 'KRSI_LANDLOCK_ABI';

export interface Confinement {
  abi: number;
  /** Directories the agent may write under. */
  writable: string[];
  /** Checked from inside: writing elsewhere failed with EACCES. */
  verified: boolean;
}

/** The Landlock domain this process runs in, if the confinement already happened. */
export function currentConfinement(): { abi: number } | null {
  const abi = Number(process.env[MARK]);
  return Number.isInteger(abi) && abi > 0 ? { abi } : null;
}

/** The ELF interpreter of node, which exec opens too. */
function elfInterpreter(): string[] {
  for (const p of ['/lib64/ld-linux-x86-64.so.2', '/lib/ld-linux-aarch64.so.1']) {
    try {
      return [realpathSync(p), p];
    } catch {
      // not this architecture
    }
  }
  return [];
}

/**
 * Restricts this process and re-executes it; returns only when Landlock is
 * unavailable (then the agent runs unconfined, and says so).
 */
export function confineAndReexec(writable: readonly string[]): void {
  if (currentConfinement()) return;
  for (const dir of writable) mkdirSync(dir, { recursive: true, mode: 0o700 });
  const exec = [process.execPath, realpathSync(process.execPath), ...elfInterpreter()];
  let abi: number;
  try {
    abi = native.landlockRestrict({ read: ['/'], write: [...writable, '/dev/null'], exec: [...new Set(exec)] }).abi;
  } catch (err) {
    log.warn({ err: (err as Error).message }, 'Landlock is unavailable: the agent runs unconfined');
    return;
  }
  const env = Object.entries({ ...process.env, [MARK]: String(abi) }).map(([k, v]) => `${k}=${v}`);
  native.execve(process.execPath, [process.argv0, ...process.execArgv, ...process.argv.slice(1)], env);
}

/** From inside: a file outside the writable directories cannot be created. */
export function verifyConfinement(writable: readonly string[]): Confinement | null {
  const current = currentConfinement();
  if (!current) return null;
  const probe = join(tmpdir(), `.krsi-landlock-probe-${process.pid}`);
  let verified = false;
  try {
    openSync(probe, 'w');
    rmSync(probe, { force: true });
    log.error({ probe }, 'Landlock did not stop a write outside the agent’s directories');
  } catch (err) {
    verified = (err as NodeJS.ErrnoException).code === 'EACCES';
  }
  return { abi: current.abi, writable: [...writable], verified };
}

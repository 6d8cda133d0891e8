// Binary classes for the processes that were running before a generation:
// the kernel computes a task's classes at exec and passes them on at fork,
// but it cannot go back to tasks that exec'd before the classes existed. The
// agent computes them from a snapshot of the processes (each one's
// executable and its chain of parents, src/agent/proc-snapshot.ts) with the
// same matcher `krsi policy test` uses, and writes them into the task_ctx
// storage through a pidfd.
import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { decodeKrsiTaskCtx, encodeKrsiTaskCtx, KrsiTaskCtxLayout } from '../abi/generated.js';
import { native, type BpfMap } from '../bpf/native.js';
import { formatDevice, fromStatDev } from '../events/devices.js';
import { log } from '../log.js';
import type { ProcEntry } from './proc-snapshot.js';
import type { BinaryClass } from '../policy/compile.js';
import { binaryMatches, type BinaryFacts, type ListMembership } from '../policy/evaluate.js';

/** sha256 of a process's executable, by path (the agent may read any file). */
function exeDigest(exe: BinaryFacts, hashes: Map<string, string>): string | undefined {
  const key = `${exe.dev}/${exe.ino}`;
  let h = hashes.get(key);
  if (h === undefined) {
    try {
      const st = statSync(exe.path, { bigint: true });
      // The path may name another file by now (replaced, deleted): only the same inode counts.
      if (formatDevice(fromStatDev(st.dev)) !== exe.dev || st.ino !== exe.ino) return undefined;
      h = createHash('sha256').update(readFileSync(exe.path)).digest('hex');
    } catch {
      return undefined;
    }
    hashes.set(key, h);
  }
  return h;
}

function classesOf(exe: BinaryFacts | null, classes: readonly BinaryClass[], lists: ListMembership): bigint {
  if (!exe) return 0n;
  let bits = 0n;
  for (const c of classes) if (binaryMatches(c.selector, exe, lists)) bits |= 1n << BigInt(c.bit);
  return bits;
}

export interface SeedResult {
  processes: number;
  written: number;
  gone: number;
}

/** Writes classes of `generation` for every running process. */
export function seedClasses(
  taskCtx: BpfMap,
  snapshot: readonly ProcEntry[],
  generation: bigint,
  classes: readonly BinaryClass[],
  lists: ListMembership,
  wantHash: boolean,
): SeedResult {
  const hashes = new Map<string, string>();
  const procs = new Map<number, { ppid: number; exe: BinaryFacts | null }>();
  for (const p of snapshot) {
    const digest = p.exe && wantHash ? exeDigest(p.exe, hashes) : undefined;
    procs.set(p.tgid, { ppid: p.ppid, exe: p.exe && digest !== undefined ? { ...p.exe, sha256: digest } : p.exe });
  }
  const selfBits = new Map<number, bigint>();
  for (const [pid, info] of procs) selfBits.set(pid, classesOf(info.exe, classes, lists));
  const ancestorBits = (pid: number): bigint => {
    let bits = 0n;
    let p = procs.get(pid)?.ppid ?? 0;
    for (let depth = 0; p > 0 && depth < 4096; depth++) {
      bits |= selfBits.get(p) ?? 0n;
      p = procs.get(p)?.ppid ?? 0;
    }
    return bits;
  };

  const result: SeedResult = { processes: procs.size, written: 0, gone: 0 };
  for (const [pid, info] of procs) {
    if (!info.exe) continue;
    let fd: number;
    try {
      fd = native.pidfdOpen(pid);
    } catch {
      result.gone++;
      continue;
    }
    try {
      const key = Buffer.alloc(4);
      key.writeInt32LE(fd);
      const old = taskCtx.lookup(key);
      const ctx = old
        ? decodeKrsiTaskCtx(new DataView(old.buffer, old.byteOffset, old.byteLength))
        : decodeKrsiTaskCtx(new DataView(new ArrayBuffer(KrsiTaskCtxLayout.size)));
      ctx.self = selfBits.get(pid) ?? 0n;
      ctx.selfGeneration = generation;
      ctx.ancestors = ancestorBits(pid);
      ctx.ancestorsGeneration = generation;
      const v = encodeKrsiTaskCtx(ctx);
      taskCtx.update(key, Buffer.from(v.buffer, v.byteOffset, v.byteLength));
      result.written++;
    } catch (err) {
      // The process exited between pidfd_open and the update.
      log.debug({ pid, err }, 'could not seed binary classes');
      result.gone++;
    } finally {
      native.closeFd(fd);
    }
  }
  return result;
}

// The running processes as the kernel sees them, from a task iterator
// (bpf/hooks/proc_snapshot.bpf.c): tgid, parent, executable. The agent
// cannot read /proc/PID/exe of other processes once Landlock confines it
// (a Landlock domain may not ptrace outside itself), and the iterator reads
// every process in one pass anyway.
import { decodeKrsiProcEntry, KRSI_PROC_HAS_EXE, KrsiProcEntryLayout } from '../abi/generated.js';
import type { BpfLink, BpfObject } from '../bpf/native.js';
import { formatDevice, fromKernelDev } from '../events/devices.js';
import type { BinaryFacts } from '../policy/evaluate.js';

export interface ProcEntry {
  tgid: number;
  ppid: number;
  startNs: bigint;
  /** null for kernel threads. */
  exe: BinaryFacts | null;
}

/** Decodes the iterator's output: entries, each followed by its path bytes. */
export function decodeProcSnapshot(buf: Buffer): ProcEntry[] {
  const out: ProcEntry[] = [];
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let off = 0;
  while (off + KrsiProcEntryLayout.size <= buf.length) {
    const e = decodeKrsiProcEntry(view, off);
    off += KrsiProcEntryLayout.size;
    if (off + e.pathLen > buf.length) throw new Error(`process snapshot: entry of ${e.tgid} truncated`);
    const path = buf.toString('utf8', off, off + e.pathLen);
    off += e.pathLen;
    out.push({
      tgid: e.tgid,
      ppid: e.ppid,
      startNs: e.startNs,
      exe: e.flags & KRSI_PROC_HAS_EXE ? { path, dev: formatDevice(fromKernelDev(e.dev)), ino: e.ino } : null,
    });
  }
  if (off !== buf.length) throw new Error(`process snapshot: ${buf.length - off} trailing bytes`);
  return out;
}

/** Reads the snapshot through one iterator link, attached on first use. */
export class ProcSnapshot {
  private link: BpfLink | null = null;

  constructor(private readonly object: BpfObject) {}

  read(): ProcEntry[] {
    const program = this.object.program('proc_snapshot');
    if (program.fd < 0) throw new Error('the process snapshot is unavailable: this kernel cannot load proc_snapshot (bpf_d_path in task iterators)');
    this.link ??= program.attach();
    return decodeProcSnapshot(this.link.readIter());
  }

  close(): void {
    this.link?.close();
    this.link = null;
  }
}

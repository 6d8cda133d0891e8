// The agent's half of the content cache (bpf/lib/content.h): where the kernel
// cannot hash a file (no bpf_ima_file_hash, or `krsi run --no-ima`), a miss
// sends a hash request; the agent hashes the file and writes the digest into
// content_hashes, keyed by dev+inode and stamped with the inode's ctime and
// generation as the kernel saw them, so the kernel uses it only while the
// file is unchanged. From then on the kernel decides on it.
//
// The exec (or mapping) that caused the miss was not decided on content: it
// ran. When the digest turns out to be one an enforcing rule denies, the
// agent kills that process (recognised by its start time, so a reused pid is
// never touched) and reports it as a reaction.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import {
  KRSI_HASH_REQ_EXEC,
  KRSI_HASH_REQ_PATH_UNRESOLVED,
  decodeKrsiHashRequest,
  encodeKrsiContentHash,
  encodeKrsiInodeKey,
  type KrsiHashRequest,
} from '../abi/generated.js';
import type { BpfMap } from '../bpf/native.js';
import { isoNs } from '../events/clock.js';
import { formatDevice, fromKernelDev, fromStatDev, toKernelDev } from '../events/devices.js';
import { SCHEMA_VERSION, type ReactionEvent } from '../events/schema.js';
import { cString } from '../events/text.js';
import { log } from '../log.js';
import type { Decision, EventFacts } from '../policy/evaluate.js';
import { startTicks } from '../reactions/engine.js';

/** Files changed this recently are hashed a little later: ctime is coarse, a write in the same tick would not show. */
const SETTLE_MS = 50;
const CLOCK_TICKS_PER_SECOND = 100;

export interface HashRequest {
  dev: number;
  ino: bigint;
  tgid: number;
  startNs: bigint;
  ctimeNs: bigint;
  ctimeSec: bigint;
  ctimeNsec: number;
  generation: number;
  exec: boolean;
  path: string | null;
  /** CLOCK_MONOTONIC of the request, for the latency of a late kill. */
  timeNs: bigint;
}

export function parseHashRequest(view: DataView): HashRequest {
  const r: KrsiHashRequest = decodeKrsiHashRequest(view);
  const path = (r.flags & KRSI_HASH_REQ_PATH_UNRESOLVED) !== 0 || r.pathLen === 0 ? null : Buffer.from(cString(r.path)).toString('utf8');
  return {
    dev: r.dev,
    ino: r.ino,
    tgid: r.tgid,
    startNs: r.startNs,
    ctimeSec: r.ctimeSec,
    ctimeNsec: r.ctimeNsec,
    ctimeNs: r.ctimeSec * 1_000_000_000n + BigInt(r.ctimeNsec),
    generation: r.generation,
    exec: (r.flags & KRSI_HASH_REQ_EXEC) !== 0,
    path,
    timeNs: r.hdr.timeNs,
  };
}

export interface ContentHasherDeps {
  /** The exec policy's decision for an executable now known by content. */
  decide(facts: EventFacts): Decision;
  emit(event: ReactionEvent): void;
}

export class ContentHasher {
  /** Requests being handled, by file state, with the execs waiting for the digest. */
  private readonly inFlight = new Map<string, HashRequest[]>();
  /** Digests computed, by file state. */
  private readonly digests = new Map<string, string>();
  private pending = 0;
  private idle: Array<() => void> = [];

  constructor(
    private readonly map: BpfMap,
    private readonly deps: ContentHasherDeps,
  ) {}

  /** Takes a KRSI_EVENT_HASH_REQUEST record. */
  onRecord(view: DataView): void {
    let req: HashRequest;
    try {
      req = parseHashRequest(view);
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'undecodable hash request');
      return;
    }
    const key = `${req.dev}/${req.ino}/${req.ctimeNs}/${req.generation}`;
    const known = this.digests.get(key);
    if (known !== undefined) {
      // The kernel asked again before it saw the entry (or the entry was evicted).
      this.write(req, known);
      this.lateEnforce(req, known);
      return;
    }
    const waiting = this.inFlight.get(key);
    if (waiting) {
      waiting.push(req);
      return;
    }
    this.inFlight.set(key, [req]);
    this.pending++;
    this.handle(req)
      .then((sha) => {
        const all = this.inFlight.get(key) ?? [];
        if (sha === null) return;
        this.digests.set(key, sha);
        if (this.digests.size > 65536) this.digests.clear();
        for (const r of all) this.lateEnforce(r, sha);
      })
      .catch((err: Error) => log.debug({ err: err.message, path: req.path }, 'could not hash a file for the content cache'))
      .finally(() => {
        this.inFlight.delete(key);
        this.pending--;
        if (this.pending === 0) for (const f of this.idle.splice(0)) f();
      });
  }

  /** Resolves when no request is being handled (tests). */
  settled(): Promise<void> {
    return this.pending === 0 ? Promise.resolve() : new Promise((resolve) => this.idle.push(resolve));
  }

  private write(req: HashRequest, sha: string): void {
    const key = encodeKrsiInodeKey({ ino: req.ino, dev: req.dev });
    const value = encodeKrsiContentHash({
      sha256: Buffer.from(sha, 'hex'),
      ctimeSec: req.ctimeSec,
      ctimeNsec: req.ctimeNsec,
      generation: req.generation,
    });
    this.map.update(Buffer.from(key.buffer, key.byteOffset, key.byteLength), Buffer.from(value.buffer, value.byteOffset, value.byteLength));
  }

  /** Hashes the file of req and writes the entry; its digest, or null when the file is not there as it was. */
  private async handle(req: HashRequest): Promise<string | null> {
    const ageMs = Date.now() - Number(req.ctimeNs / 1_000_000n);
    if (ageMs >= 0 && ageMs < SETTLE_MS) await new Promise((r) => setTimeout(r, SETTLE_MS - ageMs));
    const candidates = [...(req.path ? [req.path] : []), ...(req.exec ? [`/proc/${req.tgid}/exe`] : [])];
    for (const path of candidates) {
      const sha = await this.hashIfSame(path, req);
      if (sha === null) continue;
      this.write(req, sha);
      log.debug({ path, sha256: sha }, 'content cache filled');
      return sha;
    }
    return null;
  }

  /** The file's sha256, if path is still the file of the request, unchanged throughout. */
  private async hashIfSame(path: string, req: HashRequest): Promise<string | null> {
    let fh;
    try {
      fh = await open(path, 'r');
    } catch {
      return null;
    }
    try {
      const same = async (): Promise<boolean> => {
        const st = await fh.stat({ bigint: true });
        return toKernelDev(fromStatDev(st.dev)) === req.dev && st.ino === req.ino && st.ctimeNs === req.ctimeNs && st.isFile();
      };
      if (!(await same())) return null;
      const hash = createHash('sha256');
      const buf = Buffer.alloc(1 << 20);
      let pos = 0;
      for (;;) {
        const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
        if (bytesRead === 0) break;
        hash.update(buf.subarray(0, bytesRead));
        pos += bytesRead;
      }
      // A write while it was being read changed ctime: the digest is not the file's.
      if (!(await same())) return null;
      return hash.digest('hex');
    } finally {
      await fh.close();
    }
  }

  /**
   * The exec or mapping that asked went on without the digest: if an
   * enforcing rule denies this content, the process is killed now. Only what
   * the request says is known (the file); a rule that needs more (ids,
   * lineage) does not match here, and decides from the next time on.
   */
  private lateEnforce(req: HashRequest, sha: string): void {
    const file = { path: req.path ?? '', dev: formatDevice(fromKernelDev(req.dev)), ino: req.ino, sha256: sha };
    const facts: EventFacts = req.exec ? { hook: 'exec', binary: file } : { hook: 'mmap_exec', library: file };
    const decision = this.deps.decide(facts);
    log.debug({ path: file.path, hook: facts.hook, verdict: decision.verdict, rule: decision.decidedBy?.rule }, 'content known late');
    if (decision.verdict !== 'deny' || !decision.decidedBy) return;
    const ticks = startTicks(req.tgid);
    const expected = Number(req.startNs / BigInt(1e9 / CLOCK_TICKS_PER_SECOND));
    let pids: number[] = [];
    const errors: string[] = [];
    if (ticks === null) errors.push(`pid ${req.tgid} has exited`);
    else if (Math.abs(ticks - expected) > 1) errors.push(`pid ${req.tgid} is another process now`);
    else {
      try {
        process.kill(req.tgid, 'SIGKILL');
        pids = [req.tgid];
      } catch (err) {
        errors.push((err as Error).message);
      }
    }
    const latencyUs = Number(process.hrtime.bigint() - req.timeNs) / 1000;
    this.deps.emit({
      schema: SCHEMA_VERSION,
      kind: 'reaction',
      time: isoNs(BigInt(Date.now()) * 1_000_000n),
      reaction: { policy: decision.decidedBy.policy, name: 'content-hash-late-kill' },
      trigger: { policy: decision.decidedBy.policy, rule: decision.decidedBy.rule, kind: facts.hook, pid: req.tgid, time: isoNs(BigInt(Date.now()) * 1_000_000n) },
      actions: [{ do: 'kill', pids }],
      latency_us: Math.max(0, Math.round(latencyUs)),
      errors,
    });
  }
}

/**
 * Whether the running kernel has bpf_ima_file_hash (Linux 5.18+): the helper
 * is a function of the kernel's BTF, whose string table names it. (Reading
 * /proc/kallsyms instead costs seconds under emulation: the kernel formats
 * ~120k lines.)
 */
export function kernelHasImaFileHash(btfPath = '/sys/kernel/btf/vmlinux'): boolean {
  try {
    return readFileSync(btfPath).includes('\0bpf_ima_file_hash\0');
  } catch {
    return false;
  }
}

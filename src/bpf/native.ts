// The native binding (native/src/*.cc): libbpf's objects, programs, maps,
// links, ring buffers and perf buffers, synchronous, bytes in and bytes out. Typed decoding
// of keys, values and records belongs to the callers, not here.
//
// The addon is loaded from the package root (src/paths.ts), where
// native/build/Release/krsi_native.node is built by `npm ci`.
// Importing this module also routes libbpf's log into the pino logger, in
// every thread that imports it (the addon keeps one logger per environment).
import { createRequire } from 'node:module';
import { log } from '../log.js';
import { packageRoot } from '../paths.js';

export type LibbpfLogLevel = 'warn' | 'info' | 'debug';

/** Thrown for a failed libbpf or syscall call. */
export interface NativeError extends Error {
  /** errno name, e.g. 'EPERM' ('ENOTSUPP' for the kernel's 524, 'UNKNOWN' if unnamed). */
  code: string;
  /** Positive errno. */
  errno: number;
  /** The failing call, e.g. 'bpf_object__load'. */
  op: string;
  /** Warn and info lines libbpf printed during the call (a failed load's verifier log included). */
  libbpfLog: string;
}

/** Thrown when a closed handle (or a program or map of a closed object) is used. */
export interface ClosedError extends Error {
  code: 'ERR_KRSI_CLOSED';
}

export interface OpenOpts {
  /** BTF of the target kernel, for CO-RE when /sys/kernel/btf/vmlinux is not the right one. */
  btfCustomPath?: string;
  /** Verifier log level for every program (1, 2, 4 as in BPF_PROG_LOAD); 0 = only on failure. */
  kernelLogLevel?: number;
  objectName?: string;
}

export interface BpfObject {
  readonly name: string;
  /** True once load() succeeded (false again after close()). */
  readonly loaded: boolean;
  /**
   * Sets a global variable of .rodata, .data, .bss or a custom .rodata.* /
   * .data.* section, found by name in the object's BTF. Before load only;
   * value must have exactly the variable's size.
   */
  setGlobal(name: string, value: Uint8Array): void;
  /** A new wrapper per call: compare programs by name, not identity. */
  programs(): BpfProgram[];
  /** Throws a NativeError (ENOENT) if there is no such program. */
  program(name: string): BpfProgram;
  maps(): BpfMap[];
  /** Throws a NativeError (ENOENT) if there is no such map. */
  map(name: string): BpfMap;
  /** Creates maps and loads programs; a verifier rejection's log is in the error message. */
  load(): void;
  /** Frees everything the object owns; links made from it stay attached. Idempotent. */
  close(): void;
}

export interface BpfObjectStatic {
  openFile(path: string, opts?: OpenOpts): BpfObject;
  /** The ELF is copied: buf may be reused once this returns. */
  openBuffer(buf: Uint8Array, name: string, opts?: OpenOpts): BpfObject;
}

export interface RunStats {
  runTimeNs: bigint;
  runCount: bigint;
}

export interface BpfProgram {
  readonly name: string;
  /** ELF section, without libbpf's leading '?' (e.g. 'lsm/bprm_check_security'). */
  readonly section: string;
  /** libbpf_bpf_prog_type_str(), e.g. 'lsm', 'tracing'. */
  readonly type: string;
  /** libbpf_bpf_attach_type_str() of the expected attach type, e.g. 'lsm_mac', 'trace_raw_tp'. */
  readonly attachType: string;
  /** BPF_F_SLEEPABLE, set by libbpf from sections such as lsm.s/ and fentry.s/. */
  readonly sleepable: boolean;
  /** Whether load() loads it; settable before load only. */
  autoload: boolean;
  /** -1 before load. */
  readonly fd: number;
  /** bpf_program__attach(): the method follows the section (lsm/, tp/, tp_btf/, raw_tp/, ...). */
  attach(): BpfLink;
  /** Counters move only while kernel.bpf_stats_enabled (or BPF_ENABLE_STATS) is on. */
  runStats(): RunStats;
  /** Kernel program id; throws if not loaded. */
  id(): number;
}

export interface BpfLink {
  readonly fd: number;
  readonly pinPath: string | null;
  /** Pins in bpffs (the parent directory is created); the attachment then outlives the process. */
  pin(path: string): void;
  unpin(): void;
  /** BPF_LINK_DETACH: ends the attachment even if pinned; not every link type supports it. */
  detach(): void;
  /** bpf_link__destroy(): closes the fd, which detaches unless pinned. Idempotent. */
  close(): void;
  /** Kernel link id. */
  id(): number;
  /** What identifies a link, e.g. one adopted from bpffs (bpf_obj_get_info_by_fd on the link). */
  /** An iterator link (iter/ program): runs it once and returns its whole output (at most 64 MiB). */
  readIter(): Buffer;
  info(): LinkInfo;
}

export interface LinkInfo {
  /** Kernel link id. */
  id: number;
  /** Kernel id of the attached program. */
  progId: number;
  /** libbpf_bpf_link_type_str(), e.g. 'tracing' (fentry, lsm), 'raw_tracepoint' (tp_btf, raw_tp). */
  type: string;
}

export interface BpfLinkStatic {
  /** Adopts a pinned link; closing it leaves the pin (and the attachment) in place. */
  open(pinPath: string): BpfLink;
}

export interface BatchLookup {
  /** count keys of keySize bytes, back to back. */
  keys: Buffer;
  /** count values of valueSize bytes (per-CPU maps: of the per-CPU value size). */
  values: Buffer;
  count: number;
}

export const BPF_ANY = 0;
export const BPF_NOEXIST = 1;
export const BPF_EXIST = 2;

/** map_flags for MapSpec.flags (uapi/linux/bpf.h). */
export const BPF_F_NO_PREALLOC = 0x1;
/** User space may only read the map. */
export const BPF_F_RDONLY = 0x8;
/** User space may only write the map. */
export const BPF_F_WRONLY = 0x10;
/** Programs may only read the map. */
export const BPF_F_RDONLY_PROG = 0x80;
/** Programs may only write the map. */
export const BPF_F_WRONLY_PROG = 0x100;
/** Array inner maps of a map-in-map may differ in max_entries (template and inner maps all need it). */
export const BPF_F_INNER_MAP = 0x1000;

/** A map for BpfMap.create(): no BTF, so not the map types that need it (task_storage, ...). */
export interface MapSpec {
  /** libbpf's name: 'hash', 'array', 'lpm_trie', 'percpu_array', 'array_of_maps', 'ringbuf', ... */
  type: string;
  /** Kernel map name: at most 15 characters of [A-Za-z0-9_.]. */
  name?: string;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  /** map_flags (default 0), e.g. BPF_F_NO_PREALLOC, which lpm_trie requires. */
  flags?: number;
  /**
   * Required for array_of_maps and hash_of_maps, refused otherwise: a map of
   * the shape every inner map must have (the kernel copies the shape; the
   * template may be closed afterwards).
   */
  innerMap?: BpfMap;
}

export interface BpfMap {
  readonly name: string;
  /** libbpf_bpf_map_type_str(), e.g. 'hash', 'percpu_array', 'ringbuf'. */
  readonly type: string;
  readonly keySize: number;
  readonly valueSize: number;
  readonly maxEntries: number;
  /** -1 before its object is loaded. */
  readonly fd: number;
  /** Values are roundUp(valueSize, 8) × numPossibleCpus() bytes, CPU 0 first. */
  readonly perCpu: boolean;
  readonly pinPath: string | null;
  /** Before load only. */
  setMaxEntries(n: number): void;
  /**
   * Whether load() creates it (bpf_map__set_autocreate); settable before
   * load only. A map left out has no fd: no loaded program may use it.
   */
  autocreate: boolean;
  /** Pins in bpffs (the parent directory is created, as by libbpf). */
  pin(path: string): void;
  unpin(): void;
  /** null if the key is absent. Keys and values must have the map's exact sizes. */
  lookup(key: Uint8Array): Buffer | null;
  /** flags: BPF_ANY, BPF_NOEXIST or BPF_EXIST (default BPF_ANY). */
  update(key: Uint8Array, value: Uint8Array, flags?: number): void;
  /** false if the key was absent. */
  delete(key: Uint8Array): boolean;
  /** Every key (BPF_MAP_GET_NEXT_KEY walk, at most maxEntries). */
  keys(): Buffer[];
  /** The whole map through BPF_MAP_LOOKUP_BATCH. */
  lookupBatch(): BatchLookup;
  updateBatch(keys: Uint8Array, values: Uint8Array, count: number, flags?: number): void;
  /** Returns count; the kernel stops at the first key it cannot delete and this throws. */
  deleteBatch(keys: Uint8Array, count: number): number;
  freeze(): void;
  /** Kernel map id; throws if the map is not created yet. */
  id(): number;
  /**
   * array_of_maps / hash_of_maps only (TypeError otherwise): stores inner at
   * key (its fd as the u32 value). The outer map holds the inner map itself,
   * so inner may be closed afterwards. A closed or not yet created inner is a
   * TypeError; an inner map of another shape than the outer's template
   * (type, key and value size, flags; max_entries too for array inner maps
   * unless BPF_F_INNER_MAP) is a NativeError (EINVAL). flags as for update().
   */
  setInnerMap(key: Uint8Array, inner: BpfMap, flags?: number): void;
  /** array_of_maps / hash_of_maps only: the id of the map at key (what the kernel returns), null if none. */
  innerMapId(key: Uint8Array): number | null;
  /**
   * A map of a BpfObject, before load only: load() will not create it but
   * use map's kernel map (bpf_map__reuse_fd; libbpf keeps its own fd, so map
   * may be closed afterwards). The kernel map must match what the object
   * declares (type, key and value size, maxEntries, flags), or this throws a
   * NativeError (EINVAL, op 'bpf_map__reuse_fd').
   *
   * libbpf 1.1 renames the object's map after the kernel map: if map's
   * kernel name is not this map's name (or its 15-character prefix),
   * object.map(oldName) no longer finds it, object.map(kernelName) does.
   */
  reuse(map: BpfMap): void;
  /** Only for standalone handles (openPinned, openById, create); an object's maps close with the object. Idempotent. */
  close(): void;
}

export interface BpfMapStatic {
  /** A standalone handle on a pinned map (bpf_obj_get); close() it when done. */
  openPinned(path: string): BpfMap;
  /** A standalone handle on the map with this kernel id (bpf_map_get_fd_by_id); close() it when done. */
  openById(id: number): BpfMap;
  /**
   * A new map (bpf_map_create), as a standalone handle: the map lives while
   * the handle is open, or while it is pinned, held by an outer map or used
   * by a loaded program. Errors: TypeError for a bad spec, NativeError with
   * op 'bpf_map_create' for what the kernel refuses.
   */
  create(spec: MapSpec): BpfMap;
}

export interface RingBufferOpts {
  /** Records per batch, and per event-loop turn (default 4096). */
  maxRecordsPerTick?: number;
  /**
   * Soft size of a batch (default 1 MiB): the batch ends with the record that
   * reaches it, so a batch may exceed it by one record.
   */
  batchBytes?: number;
}

/**
 * Called once per batch. Records, repeated count times:
 * u32 length | u32 ring (index into the constructor's maps) | payload | zeros to 8 bytes.
 * length is hdr.size for records starting with a krsi_event_header whose size
 * is between the header's and the sample's; otherwise the sample's size.
 * The Buffer is fresh for each batch and may be kept.
 */
export type OnBatch = (batch: Buffer, count: number) => void;

export interface RingBufferStats {
  batches: number;
  records: number;
}

export interface RingBuffer {
  /** Drains now through onBatch (one call per batch); returns the records delivered. */
  consume(): number;
  /** Keep the event loop alive while open (the default). */
  ref(): void;
  unref(): void;
  /** Stops watching the rings (records stay in them) until resume(); consume() still drains. */
  pause(): void;
  resume(): void;
  /** Stops polling; records still in the rings stay there. Idempotent. */
  close(): void;
  readonly stats: RingBufferStats;
}

export interface RingBufferConstructor {
  new (maps: BpfMap[], opts: RingBufferOpts, onBatch: OnBatch): RingBuffer;
}

export interface PerfBufferOpts extends RingBufferOpts {
  /** Data pages per CPU, a power of two (default 64: 256 KiB with 4 KiB pages). */
  pageCount?: number;
}

export interface PerfBufferStats extends RingBufferStats {
  /** Records the kernel could not write (PERF_RECORD_LOST counts), as seen so far. */
  lost: number;
  /** The same, per CPU (index = CPU number, over the possible CPUs). */
  lostByCpu: number[];
  /** Per-CPU buffers opened (online CPUs). */
  buffers: number;
  pageCount: number;
  /** Memory mmapped for them: buffers × (pageCount + 1 header page) × page size. */
  bytes: number;
}

/**
 * A reader of a perf event array (libbpf's perf_buffer): the same batches as
 * RingBuffer's, records tagged with their CPU in place of a ring index.
 * Drops are counted by the kernel and reported in stats.lost. A batch may
 * exceed the budget by one CPU's buffer (libbpf drains a buffer whole).
 * Counters survive close(); records still in the buffers at close() are lost.
 */
export interface PerfBuffer extends Omit<RingBuffer, 'stats'> {
  readonly stats: PerfBufferStats;
}

export interface PerfBufferConstructor {
  /** map must be a loaded 'perf_event_array' map. */
  new (map: BpfMap, opts: PerfBufferOpts, onBatch: OnBatch): PerfBuffer;
}

/** SO_PEERCRED of a Unix socket: the peer process as it was at connect() time. */
export interface PeerCredentials {
  pid: number;
  uid: number;
  gid: number;
}

export interface Binding {
  /** "1.1" */
  libbpfVersion(): string;
  numPossibleCpus(): number;
  /** Routes libbpf's output for this thread's environment; null stops it. */
  setLogger(fn: ((level: LibbpfLogLevel, msg: string) => void) | null): void;
  /** libbpf_probe_bpf_prog_type(), by libbpf's name ('lsm', 'tracing', ...). */
  probeProgType(type: string): boolean;
  /** libbpf_probe_bpf_map_type(), by libbpf's name ('ringbuf', 'task_storage', ...). */
  probeMapType(type: string): boolean;
  /** libbpf_probe_bpf_helper(); helper is an enum bpf_func_id value. */
  probeHelper(progType: string, helper: number): boolean;
  /**
   * pidfd_open(pid, 0): a close-on-exec fd naming the process, e.g. as the
   * 4-byte key of a task_storage map. NativeError 'ESRCH' (op 'pidfd_open')
   * once the process is gone. Close it with closeFd().
   */
  pidfdOpen(pid: number): number;
  /** close(2), for fds this binding returned (pidfdOpen); EBADF for an fd that is not open. */
  closeFd(fd: number): void;
  /**
   * getsockopt(SO_PEERCRED) on a connected Unix socket's fd. TypeError for
   * another kind of socket, NativeError (op 'getsockopt') otherwise:
   * ENOTSOCK, EBADF, ENOTCONN when there is no peer.
   * See socketPeerCredentials() in src/system/peer-credentials.ts for a net.Socket.
   */
  peerCredentials(fd: number): PeerCredentials;
  /**
   * Confines this thread (and what it execs) with Landlock: read under
   * `read`, read and write under `write`, execute only `exec`. Irreversible.
   * Throws a NativeError (ENOSYS, EOPNOTSUPP) where Landlock is unavailable.
   */
  landlockRestrict(paths: { read: string[]; write: string[]; exec: string[] }): { abi: number };
  /** execve(2): replaces this process; returns only by throwing. */
  execve(path: string, argv: string[], env: string[]): never;
  BpfObject: BpfObjectStatic;
  BpfLink: BpfLinkStatic;
  BpfMap: BpfMapStatic;
  RingBuffer: RingBufferConstructor;
  PerfBuffer: PerfBufferConstructor;
}

/** Where the addon is, from the package root. */
export const ADDON_PATH = 'native/build/Release/krsi_native.node';

function loadBinding(): Binding {
  const require = createRequire(import.meta.url);
  const path = `${packageRoot}${ADDON_PATH}`;
  try {
    return require(path) as Binding;
  } catch (err) {
    throw new Error(`cannot load the krsi native binding from ${path} (build it with \`make native\`)`, {
      cause: err,
    });
  }
}

export const native: Binding = loadBinding();

const libbpfLog = log.child({ component: 'libbpf' });

function forwardLibbpfLog(level: LibbpfLogLevel, msg: string): void {
  if (libbpfLog.isLevelEnabled(level)) libbpfLog[level](msg);
}

native.setLogger(forwardLibbpfLog);

/**
 * Runs fn without forwarding libbpf's log: for probes whose failures are
 * expected and reported otherwise (errors still carry the log they caused).
 */
export function withoutLibbpfLog<T>(fn: () => T): T {
  native.setLogger(null);
  try {
    return fn();
  } finally {
    native.setLogger(forwardLibbpfLog);
  }
}

export function isNativeError(err: unknown): err is NativeError {
  return (
    err instanceof Error &&
    typeof (err as Partial<NativeError>).code === 'string' &&
    typeof (err as Partial<NativeError>).errno === 'number' &&
    typeof (err as Partial<NativeError>).op === 'string'
  );
}

export function isClosedError(err: unknown): err is ClosedError {
  return err instanceof Error && (err as Partial<ClosedError>).code === 'ERR_KRSI_CLOSED';
}

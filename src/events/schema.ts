// The JSON event stream: one object per line, validated by these schemas and
// documented in docs/events.md. Field names are snake_case and stable within
// a schema version; 64-bit identifiers are decimal strings because JSON
// numbers lose precision past 2^53.
import { z } from 'zod';

export const SCHEMA_VERSION = 'krsi/v1' as const;

const u32 = z.number().int().min(0).max(0xffff_ffff);
const u64String = z.string().regex(/^\d+$/, 'a decimal 64-bit integer');
const base64 = z.string().regex(/^[A-Za-z0-9+/]*={0,2}$/, 'base64');

export const ProcessSchema = z
  .object({
    pid: u32.describe('process id (the kernel tgid)'),
    tid: u32.describe('thread id (the kernel pid)'),
    ppid: u32.describe('process id of the real parent'),
    uid: u32,
    gid: u32,
    euid: u32,
    egid: u32,
    comm: z.string().describe('task comm, at most 15 bytes'),
    comm_base64: base64.optional().describe('exact bytes of comm, present only when they are not valid UTF-8'),
    cgroup_id: u64String.describe('cgroup v2 id'),
    start_boottime_ns: u64String.describe('process start, ns since boot: with pid, an identity that survives pid reuse'),
    // Enrichment by the agent (src/ops/enrich.ts), from its process cache and /proc; absent when unknown.
    ancestors: z
      .array(z.object({ pid: u32, comm: z.string(), exe: z.string().optional() }).strict())
      .optional()
      .describe("the parent, its parent and so on (at most 8), from the agent's process cache; stops at the first unknown process or at pid 1"),
    cgroup: z.string().optional().describe('cgroup v2 path of the process (from cgroup_id), e.g. /system.slice/ssh.service'),
    container_id: z.string().regex(/^[0-9a-f]{12,64}$/).optional().describe('container id read from the cgroup path (docker, containerd, cri-o, podman)'),
    user: z.string().optional().describe('name of uid in /etc/passwd'),
    group: z.string().optional().describe('name of gid in /etc/group'),
  })
  .strict();

export const ExecSchema = z
  .object({
    path: z.string().describe('full path of the executed file, as bpf_d_path resolves it; empty if unresolved'),
    path_base64: base64.optional(),
    path_unresolved: z.boolean(),
    filename: z.string().describe('the name execve() was given (a symlink, a relative path)'),
    filename_base64: base64.optional(),
    filename_truncated: z.boolean(),
    dev: z.string().regex(/^\d+:\d+$/, 'major:minor').describe('device of the file system holding the file'),
    ino: u64String.describe('inode number of the file'),
    argc: u32.describe('argument count of the exec, which argv may not hold entirely'),
    argv: z.array(z.string()),
    argv_base64: z.array(base64.nullable()).optional().describe('exact bytes of each argument, present only when one is not valid UTF-8'),
    argv_truncated: z.boolean().describe('argv lacks arguments or bytes beyond the per-event bounds'),
    argv_unreadable: z.boolean().describe('argv could not be read from memory'),
    fileless: z
      .enum(['memfd', 'deleted'])
      .nullable()
      .optional()
      .describe('the file is on no file system: a memfd (memfd_create), or a file without a name left (unlinked, O_TMPFILE); null otherwise'),
    env: z
      .record(z.string(), z.string())
      .optional()
      .describe('the recorded variables (LD_PRELOAD, LD_AUDIT, LD_LIBRARY_PATH unless `krsi run --env-record` says otherwise) set in the new image, by name; absent for denied execs'),
    env_base64: z.record(z.string(), base64).optional().describe('exact bytes of the values of env that are not valid UTF-8'),
    env_truncated: z.array(z.string()).optional().describe('names in env whose value was longer than 1023 bytes and is cut'),
    env_incomplete: z.boolean().optional().describe('the environment was larger than the 128 KiB krsi reads: a variable past it may be missing from env'),
    env_mismatch: z
      .boolean()
      .optional()
      .describe("the new image's environment made the policy decide otherwise than bprm_check_security did on the caller's memory (rewritten meanwhile): the process was killed, or given AT_SECURE"),
    hash_missing: z.boolean().optional().describe('a sha256 selector needed the file\'s digest and none was known yet (no IMA): the agent computes it now'),
  })
  .strict();

export const RuleRefSchema = z
  .object({
    policy: z.string(),
    rule: z.string(),
    action: z.enum(['audit', 'allow', 'deny', 'kill', 'secureexec']),
    mode: z.enum(['enforce', 'monitor']),
  })
  .strict();

export const PolicyOutcomeSchema = z
  .object({
    generation: z.number().int().min(0).describe('the policy generation that decided; 0 when none was loaded'),
    decided_by: z.enum(['rule', 'default', 'no-policy']),
    rule: RuleRefSchema.nullable().describe('the deciding rule (decided_by: rule)'),
    default: z.enum(['allow', 'deny']).nullable().describe("the hook's default, when it decided"),
    would_deny: RuleRefSchema.nullable().describe('a monitor-mode rule that would have denied'),
    default_would_deny: z.boolean().describe("a monitor-mode policy's default deny would have denied"),
    audit: RuleRefSchema.nullable().describe('the first audit rule that matched'),
    matched: z.array(z.string()).describe('every rule that matched, as policy/rule'),
    secureexec: z.boolean().describe('the exec runs with AT_SECURE'),
    killed: z.boolean().describe('SIGKILL was sent to the acting process'),
    context_unknown: z.boolean().describe("part of the task's context was unknown: rules that need it did not match"),
  })
  .strict();

export const ExecEventSchema = z
  .object({
    schema: z.literal(SCHEMA_VERSION),
    kind: z.literal('exec'),
    time: z.string().describe('RFC 3339 UTC with nanoseconds'),
    decision: z.enum(['allowed', 'denied']),
    policy: PolicyOutcomeSchema,
    process: ProcessSchema,
    exec: ExecSchema,
  })
  .strict();

const decision = z.enum(['allowed', 'denied']);
const device = z.string().regex(/^\d+:\d+$/, 'major:minor');

// The hooks below report only noteworthy decisions: denied, would-deny
// (monitor mode) and audit. Their common part is exec's: decision, policy,
// process, then an object about what the hook saw.

export const OpenedFileSchema = z
  .object({
    path: z.string().describe('full path of the file, as bpf_d_path resolves it; empty if unresolved'),
    path_base64: base64.optional(),
    path_unresolved: z.boolean(),
    dev: device.describe('device of the file system holding the file'),
    ino: u64String.describe('inode number of the file'),
    flags: u32.describe('open flags (f_flags: O_* as open(2) took them)'),
    flag_names: z.array(z.string()).describe('names of the flags set (O_WRONLY, O_CREAT, ...); unknown bits as 0x... hex'),
    access: z.array(z.enum(['read', 'write', 'exec'])).describe('what the open grants (f_mode): exec for an executable being loaded'),
  })
  .strict();

export const FileOpenEventSchema = z
  .object({
    schema: z.literal(SCHEMA_VERSION),
    kind: z.literal('file_open'),
    time: z.string().describe('RFC 3339 UTC with nanoseconds'),
    decision,
    policy: PolicyOutcomeSchema,
    process: ProcessSchema,
    file: OpenedFileSchema,
  })
  .strict();

export const UnlinkedFileSchema = z
  .object({
    path: z.string().describe('full path of the name being removed, relative to the process root; empty if unresolved'),
    path_base64: base64.optional(),
    path_unresolved: z.boolean(),
    dev: device.describe('device of the file system holding the file'),
    ino: u64String.describe('inode number of the file'),
    operation: z.enum(['unlink', 'rename']).optional().describe('unlink(2), or a rename(2) that replaces the file (its name goes to another file)'),
    self_delete: z.boolean().optional().describe("the file is the acting process's own executable: it deletes or replaces itself"),
  })
  .strict();

export const FileUnlinkEventSchema = z
  .object({
    schema: z.literal(SCHEMA_VERSION),
    kind: z.literal('file_unlink'),
    time: z.string(),
    decision,
    policy: PolicyOutcomeSchema,
    process: ProcessSchema,
    file: UnlinkedFileSchema,
  })
  .strict();

export const MountSchema = z
  .object({
    fstype: z.string().describe('file system type (sb->s_type->name): tmpfs, ext4, vfat, fuse, ...'),
    fstype_base64: base64.optional(),
    source: z.string().nullable().describe('the source string (mount(2) dev_name, fsconfig "source"); null when unknown'),
    source_base64: base64.optional(),
    source_truncated: z.boolean().describe('the source was longer than 4095 bytes and is cut'),
    mountpoint: z.string().nullable().describe('where mount(2) mounts it; null for the new mount API (known only at move_mount)'),
    mountpoint_base64: base64.optional(),
    device: device.describe("the superblock's device (sb->s_dev): anonymous 0:N for tmpfs and the like"),
    block_device: device.nullable().describe('the block device, null without one'),
    api: z.enum(['mount', 'fsconfig', 'unknown']).describe('mount(2), or fsconfig(FSCONFIG_CMD_CREATE) of the new mount API'),
    flags: u32.nullable().describe('mount(2) flags (MS_*); null for the new mount API'),
    sb_flags: u32.describe('superblock flags (SB_*)'),
    read_only: z.boolean().describe('the file system is created read-only (SB_RDONLY)'),
    bus: z
      .array(z.string())
      .nullable()
      .describe('buses of the devices above the block device, nearest first (a USB stick: scsi, usb, pci); [] for a loop device; null without a block device'),
    removable: z.boolean().nullable().describe("the block device's disk is removable (GENHD_FL_REMOVABLE); null without a block device"),
  })
  .strict();

export const MountEventSchema = z
  .object({
    schema: z.literal(SCHEMA_VERSION),
    kind: z.literal('mount'),
    time: z.string(),
    decision,
    policy: PolicyOutcomeSchema,
    process: ProcessSchema,
    mount: MountSchema,
  })
  .strict();

export const ModuleSchema = z
  .object({
    name: z.string().nullable().describe('file loads: the file name without .ko and compression suffix; memory loads: the name in the image; null if unknown'),
    name_base64: base64.optional(),
    source: z.enum(['file', 'memory']).describe('finit_module(2) of a file, or init_module(2) of an image in memory'),
    path: z.string().nullable().describe('full path of the module file; null for memory loads or when unresolved'),
    path_base64: base64.optional(),
    dev: device.nullable().describe('device of the file system holding the file (file loads)'),
    ino: u64String.nullable().describe('inode number of the file (file loads)'),
    sha256: z
      .string()
      .regex(/^[0-9a-f]{64}$/)
      .nullable()
      .describe("SHA-256 of the module's bytes as the kernel got them: the file (file loads, IMA's digest) or the image (memory loads); null if it could not be taken"),
    size: z.number().int().min(0).describe('bytes of the file (file loads) or of the image (memory loads)'),
  })
  .strict();

export const ModuleLoadEventSchema = z
  .object({
    schema: z.literal(SCHEMA_VERSION),
    kind: z.literal('module_load'),
    time: z.string(),
    decision,
    policy: PolicyOutcomeSchema,
    process: ProcessSchema,
    module: ModuleSchema,
  })
  .strict();

export const ModuleHiddenEventSchema = z
  .object({
    schema: z.literal(SCHEMA_VERSION),
    kind: z.literal('module_hidden'),
    time: z.string().describe('when the agent noticed'),
    module: z
      .object({
        name: z.string().describe("the module's name, as the kernel's module_load tracepoint saw it"),
        name_base64: base64.optional(),
        loaded_at: z.string().nullable().describe('when the kernel formed it (RFC 3339); null for a module loaded before the agent started'),
        taints: z.array(z.string()).describe('its taint flags at load: O (out of tree), E (unsigned), ...'),
        missing_from: z
          .array(z.enum(['proc_modules', 'sysfs']))
          .min(1)
          .describe('/proc/modules (the kernel\'s module list) and /sys/module (its sysfs object): where it is gone from'),
      })
      .strict(),
    process: ProcessSchema.nullable().describe('the process that loaded it; null for a module loaded before the agent started'),
  })
  .strict()
  .describe('a module the kernel loaded and never freed is missing from /proc/modules or /sys/module: it hid itself');

export const ConnectSchema = z
  .object({
    family: z.string().describe('address family given to connect(2): inet, inet6, unix, unspec, netlink, ... or af_N'),
    address: z.string().nullable().describe('destination address (IPv4 dotted, IPv6 RFC 5952 text); null without an IP address'),
    port: z.number().int().min(0).max(65535).nullable().describe('destination port; null without an IP address'),
    socket_type: z.string().describe('stream, dgram, raw, seqpacket, ... or type_N'),
    protocol: z.number().int().min(0).max(65535).describe('socket protocol (IPPROTO_*: 6 tcp, 17 udp, ...)'),
  })
  .strict();

export const ConnectEventSchema = z
  .object({
    schema: z.literal(SCHEMA_VERSION),
    kind: z.literal('connect'),
    time: z.string(),
    decision,
    policy: PolicyOutcomeSchema,
    process: ProcessSchema,
    connect: ConnectSchema,
  })
  .strict();

const FileIdentitySchema = {
  path: z.string().describe('full path, relative to the process root; empty if unresolved'),
  path_base64: base64.optional(),
  path_unresolved: z.boolean(),
  dev: device.describe('device of the file system holding the file'),
  ino: u64String.describe('inode number of the file'),
};

export const MmapExecEventSchema = z
  .object({
    schema: z.literal(SCHEMA_VERSION),
    kind: z.literal('mmap_exec'),
    time: z.string(),
    decision,
    policy: PolicyOutcomeSchema,
    process: ProcessSchema,
    library: z
      .object({
        ...FileIdentitySchema,
        sha256: z.string().regex(/^[0-9a-f]{64}$/).nullable().describe('its sha256, when known (IMA, or the agent without it)'),
        hash_missing: z.boolean().optional().describe('a sha256 selector needed the digest and none was known yet'),
      })
      .strict()
      .describe('the file mapped executable'),
    program: z.object(FileIdentitySchema).strict().describe("the program that maps it: the acting process's executable"),
    mmap: z
      .object({
        source: z.enum(['mmap', 'mprotect']).describe('mmap(2) with PROT_EXEC, or mprotect(2) adding PROT_EXEC'),
        prot: z.array(z.enum(['read', 'write', 'exec'])),
        flags: u32.describe('mmap flags (MAP_*); 0 for mprotect'),
      })
      .strict(),
  })
  .strict();

export const PtraceEventSchema = z
  .object({
    schema: z.literal(SCHEMA_VERSION),
    kind: z.literal('ptrace'),
    time: z.string(),
    decision,
    policy: PolicyOutcomeSchema,
    process: ProcessSchema,
    ptrace: z
      .object({
        request: z.enum(['attach', 'traceme']).describe('attach: the process takes control of target (ptrace attach, /proc/PID/mem, process_vm_*); traceme: it asks its parent, target, to trace it'),
        mode: z.array(z.string()).describe('PTRACE_MODE_* of the access check: attach, fscreds, realcreds, ...; empty for traceme'),
        target: ProcessSchema.extend({
          exe: z.string().describe("full path of the target's executable; empty if unknown"),
          exe_base64: base64.optional(),
          exe_dev: device,
          exe_ino: u64String,
        })
          .strict()
          .describe('the other process'),
      })
      .strict(),
  })
  .strict();

export const BpfEventSchema = z
  .object({
    schema: z.literal(SCHEMA_VERSION),
    kind: z.literal('bpf'),
    time: z.string(),
    decision,
    policy: PolicyOutcomeSchema,
    process: ProcessSchema,
    bpf: z
      .object({
        command: z.literal('prog_load'),
        prog_type: z.string().describe('the program type: kprobe, tracing, lsm, xdp, ... (type_N when unknown to krsi)'),
        prog_name: z.string().describe('the name the loader gave it (at most 15 bytes)'),
        prog_name_base64: base64.optional(),
        attach_type: u32.describe('expected_attach_type (enum bpf_attach_type)'),
        insn_count: u32,
        prog_flags: u32,
        attach_btf_id: u32,
      })
      .strict(),
  })
  .strict();

const IdsSchema = z
  .object({ uid: u32, euid: u32, suid: u32, fsuid: u32, gid: u32, egid: u32, sgid: u32, fsgid: u32 })
  .strict();

export const SetidEventSchema = z
  .object({
    schema: z.literal(SCHEMA_VERSION),
    kind: z.literal('setid'),
    time: z.string(),
    decision,
    policy: PolicyOutcomeSchema,
    process: ProcessSchema,
    setid: z
      .object({
        kind: z.enum(['uid', 'gid']),
        call: z.string().describe('the call family: setuid, setreuid, setresuid, setfsuid (or their gid twins)'),
        old: IdsSchema.describe('the ids before'),
        new: IdsSchema.describe('the ids the call asks for'),
      })
      .strict(),
  })
  .strict();

export const HookCountersSchema = z
  .object({
    seen: z.number().int().min(0),
    denied: z.number().int().min(0),
    emitted: z.number().int().min(0),
    dropped: z.number().int().min(0),
    rate_limited: z.number().int().min(0),
  })
  .strict();

export const RingAccountSchema = z
  .object({
    attempted: z.number().int().min(0).describe('records the programs tried to write, since the agent started'),
    received: z.number().int().min(0),
    dropped: z.number().int().min(0).describe("records the ring had no room for: the kernel's count, exact at every moment"),
    pending: z.number().int().min(0).describe('attempted - received - dropped: still in the ring or being written; 0 at stop, unless a killed predecessor took records from the ring that it never recorded as read'),
    gaps: z.number().int().min(0).describe('gap events this agent put in the stream'),
    missing: z.number().int().min(0).describe('lost records the gap events stand for: every loss is marked before a report, so missing == dropped'),
  })
  .strict();

export const AgentEventSchema = z
  .object({
    schema: z.literal(SCHEMA_VERSION),
    kind: z.literal('agent'),
    time: z.string(),
    state: z.enum(['ready', 'stopped']),
    kernel: z.string(),
    programs: z.array(z.string()).describe('programs attached'),
    generation: z.number().int().min(0).describe('the policy generation in force'),
    counters: z.record(z.string(), HookCountersSchema).describe('per hook, summed over CPUs'),
    received: z.number().int().min(0).describe('records the agent read from the rings'),
    accounting: z.object({ decisions: RingAccountSchema, events: RingAccountSchema }).strict(),
  })
  .strict();

export const ReactionEventSchema = z
  .object({
    schema: z.literal(SCHEMA_VERSION),
    kind: z.literal('reaction'),
    time: z.string(),
    reaction: z.object({ policy: z.string(), name: z.string() }).strict(),
    trigger: z
      .object({ policy: z.string(), rule: z.string(), kind: z.string(), pid: u32, time: z.string() })
      .strict()
      .describe('the event that triggered the reaction'),
    actions: z.array(
      z.union([
        z.object({ do: z.literal('add'), list: z.string(), entry: z.string(), ttl_seconds: z.number().int().optional() }).strict(),
        z.object({ do: z.literal('kill'), pids: z.array(u32) }).strict(),
      ]),
    ),
    latency_us: z.number().int().min(0).describe('from the kernel’s timestamp of the triggering event to the mitigations in force'),
    errors: z.array(z.string()),
  })
  .strict();

export const TamperEventSchema = z
  .object({
    schema: z.literal(SCHEMA_VERSION),
    kind: z.literal('tamper'),
    time: z.string(),
    decision: z.literal('denied'),
    attempt: z
      .enum(['signal', 'ptrace', 'bpf_map_fd', 'bpf_prog_fd', 'bpf_link_fd', 'bpf_pin_open', 'bpf_prog_load', 'pin_remove', 'bpffs_umount'])
      .describe('what was tried against the agent'),
    detail: u32.describe('the signal, the bpf command or program type, the ptrace mode'),
    target: u64String.describe("the agent's pid, the object id, or the pin's inode"),
    process: ProcessSchema.describe('who tried'),
  })
  .strict();

export const GapEventSchema = z
  .object({
    schema: z.literal(SCHEMA_VERSION),
    kind: z.literal('gap'),
    time: z.string(),
    ring: z.enum(['decisions', 'events']),
    cpu: u32,
    first_seq: u64String.describe(
      'the first of the lost sequence numbers: at a jump, the missing numbers just before the next record of the CPU; a loss no later record showed yet (the tail) is marked with the number after the last record received (and those marked there already), a lower bound',
    ),
    missing: z.number().int().min(1).describe('records lost here (the ring was full): counted, never silent'),
  })
  .strict();



export const EventSchema = z.discriminatedUnion('kind', [
  ExecEventSchema,
  FileOpenEventSchema,
  FileUnlinkEventSchema,
  MountEventSchema,
  ModuleLoadEventSchema,
  ConnectEventSchema,
  ModuleHiddenEventSchema,
  MmapExecEventSchema,
  PtraceEventSchema,
  BpfEventSchema,
  SetidEventSchema,
  AgentEventSchema,
  ReactionEventSchema,
  TamperEventSchema,
  GapEventSchema,
]);

export type ProcessInfo = z.infer<typeof ProcessSchema>;
export type ExecEvent = z.infer<typeof ExecEventSchema>;
export type FileOpenEvent = z.infer<typeof FileOpenEventSchema>;
export type FileUnlinkEvent = z.infer<typeof FileUnlinkEventSchema>;
export type MountEvent = z.infer<typeof MountEventSchema>;
export type ModuleLoadEvent = z.infer<typeof ModuleLoadEventSchema>;
export type ModuleHiddenEvent = z.infer<typeof ModuleHiddenEventSchema>;
export type ConnectEvent = z.infer<typeof ConnectEventSchema>;
export type MmapExecEvent = z.infer<typeof MmapExecEventSchema>;
export type PtraceEvent = z.infer<typeof PtraceEventSchema>;
export type BpfEvent = z.infer<typeof BpfEventSchema>;
export type SetidEvent = z.infer<typeof SetidEventSchema>;
/** Events of the policy hooks other than exec, which report only noteworthy decisions. */
export type PolicyHookEvent = FileOpenEvent | FileUnlinkEvent | MountEvent | ModuleLoadEvent | ConnectEvent | MmapExecEvent | PtraceEvent | BpfEvent | SetidEvent;
export type AgentEvent = z.infer<typeof AgentEventSchema>;
export type HookCounters = z.infer<typeof HookCountersSchema>;
export type RuleRefOut = z.infer<typeof RuleRefSchema>;
export type PolicyOutcome = z.infer<typeof PolicyOutcomeSchema>;
export type KrsiEvent = z.infer<typeof EventSchema>;
export type ReactionEvent = z.infer<typeof ReactionEventSchema>;
export type TamperEvent = z.infer<typeof TamperEventSchema>;
export type GapEvent = z.infer<typeof GapEventSchema>;

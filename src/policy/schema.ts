// The policy language: one zod schema for YAML/JSON documents and for the
// TypeScript builder, published as JSON Schema for editors and rendered into
// docs/policy.md. A rule is a hook, selectors, and an action.
import { z } from 'zod';
import { BPF_PROG_TYPES } from './bpf-prog-types.js';

export const API_VERSION = 'krsi.dev/v1' as const;

/** Hooks a rule can attach to, as users name them. */
export const HOOKS = ['exec', 'file_open', 'file_unlink', 'mount', 'module_load', 'connect', 'mmap_exec', 'ptrace', 'bpf', 'setid'] as const;
export type HookName = (typeof HOOKS)[number];

export const ACTIONS = ['audit', 'allow', 'deny', 'kill', 'secureexec'] as const;
export type ActionName = (typeof ACTIONS)[number];

export const MODES = ['enforce', 'monitor'] as const;
export type Mode = (typeof MODES)[number];

/** Types of dynamic lists, by what their entries are. */
export const LIST_TYPES = ['path', 'inode', 'sha256', 'uid', 'gid', 'cgroup', 'env', 'fstype', 'module', 'device', 'address', 'port'] as const;
export type ListType = (typeof LIST_TYPES)[number];

const name = z
  .string()
  .regex(/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/, 'lower-case letters, digits and dashes, at most 63, starting and ending with a letter or digit')
  .describe('name (lower-case letters, digits and dashes; at most 63)');

// Kernel strings in policy tables are at most 255 bytes (a 256-byte key with
// its NUL); longer ones could never match, so they are refused up front.
const MAX_STRING_BYTES = 255;
const boundedString = (what: string) =>
  z
    .string()
    .min(1, `${what} is empty`)
    .refine((s) => Buffer.byteLength(s) <= MAX_STRING_BYTES, `${what} is longer than ${MAX_STRING_BYTES} bytes`)
    .refine((s) => !s.includes('\0'), `${what} contains a NUL byte`);

const absolutePath = boundedString('path')
  .refine((s) => s.startsWith('/'), 'must be an absolute path')
  .describe('absolute path (at most 255 bytes)');
const listRefs = z.array(name).min(1).describe('names of dynamic lists (`spec.lists`) whose entries match');

const oneOrMore = <T extends z.ZodType>(item: T) => z.array(item).min(1);

export const InodeSchema = z
  .object({
    dev: z.string().regex(/^\d+:\d+$/, 'major:minor').describe("device of the file's file system, major:minor (`stat -c %Hd:%Ld`)"),
    ino: z
      .union([z.number().int().min(0), z.string().regex(/^\d+$/, 'a decimal inode number')])
      .transform((v) => BigInt(v))
      .describe('inode number (`stat -c %i`); a decimal string above 2^53'),
  })
  .strict()
  .describe('file by device and inode: {dev: "8:1", ino: 1234}');

const sha256 = z
  .string()
  .regex(/^[0-9a-f]{64}$/, 'a sha256 digest: 64 lower-case hex digits')
  .describe('sha256 digest (64 lower-case hex digits)');

/** Path-valued dimensions: exact paths, prefixes, globs, lists. Any one matching suffices. */
export const PathSelectorSchema = z
  .object({
    path: oneOrMore(absolutePath).optional().describe('exact paths'),
    prefix: oneOrMore(absolutePath).optional().describe('path prefixes, compared byte by byte (`/tmp/` does not match `/tmpx`)'),
    glob: oneOrMore(boundedString('glob').describe('glob (at most 255 bytes)')).optional().describe('globs: `*` within a path component, `**` across, `?`, `[a-z]`, `[!a-z]`'),
    list: listRefs.optional(),
    not: z.boolean().optional().describe('match when none of the above does'),
  })
  .strict();

/** The executable: a path selector plus identities that no name can dodge. */
export const BinarySelectorSchema = PathSelectorSchema.extend({
  inode: oneOrMore(InodeSchema).optional().describe('files by device and inode: every name and link of them'),
  sha256: oneOrMore(sha256).optional().describe('files by content (IMA computes the hash in the kernel)'),
}).strict();

const id = z.number().int().min(0).max(0xffff_ffff).describe('numeric id (0 to 4294967295)');
const idSet = z.union([
  oneOrMore(id).describe('any of these ids'),
  z
    .object({
      in: oneOrMore(id).optional().describe('any of these ids'),
      list: listRefs.optional(),
      not: z.boolean().optional().describe('match when none of the above does'),
    })
    .strict(),
]);

export const CgroupSelectorSchema = z
  .object({
    path: oneOrMore(absolutePath).optional().describe('cgroup v2 directories (under /sys/fs/cgroup): the cgroup and all below it'),
    id: oneOrMore(
      z
        .union([z.number().int().min(1), z.string().regex(/^\d+$/, 'a decimal cgroup id')])
        .transform((v) => BigInt(v))
        .describe('cgroup v2 id (the inode number of its directory; a decimal string above 2^53)'),
    )
      .optional()
      .describe('cgroups by id: exactly these cgroups'),
    list: listRefs.optional(),
  })
  .strict();

/** The two forms of a set-valued selector: a list of values, or {in, list, not}. */
const valueSet = <T extends z.ZodType>(item: T) =>
  z.union([
    oneOrMore(item).describe('any of these values'),
    z
      .object({
        in: oneOrMore(item).optional().describe('any of these values'),
        list: listRefs.optional(),
        not: z.boolean().optional().describe('match when none of the above does'),
      })
      .strict(),
  ]);

const stringSet = (what: string) => valueSet(boundedString(what).describe(`${what} (at most 255 bytes)`));

const device = z.string().regex(/^\d+:\d+$/, 'major:minor').describe('block device, major:minor (8:1)');

// Bus names as the driver model has them (struct bus_type's name): usb, scsi,
// pci, virtio, mmc, nvme's pci, ...; the kernel reads at most 15 bytes of one.
const busName = z
  .string()
  .regex(/^[A-Za-z0-9_.-]{1,15}$/, 'a bus name as /sys/bus lists them (usb, scsi, pci, virtio, mmc), at most 15 characters')
  .describe('bus name, as in /sys/bus (usb, scsi, pci, virtio, mmc)');
const busSet = z.union([
  oneOrMore(busName).describe('any of these buses'),
  z
    .object({
      in: oneOrMore(busName).describe('any of these buses'),
      not: z.boolean().optional().describe('match when the device is on none of them'),
    })
    .strict(),
]);

const cidr = z
  .string()
  .refine((s) => parseCidr(s) !== null, 'an IPv4 or IPv6 address, optionally with a /prefix length')
  .describe('IPv4 or IPv6 address, or network with a /prefix length (10.0.0.0/8, 2001:db8::/32)');
const port = z
  .union([z.number().int().min(1).max(65535), z.string().regex(/^\d{1,5}-\d{1,5}$/, 'a port or a range like 8000-8100')])
  .describe('port (1 to 65535), or inclusive range as a string ("8000-8100")');

export const MatchSchema = z
  .object({
    binary: BinarySelectorSchema.optional().describe('exec: the file executed; other hooks: the executable of the acting process'),
    parent: BinarySelectorSchema.optional().describe("the parent process's executable"),
    ancestor: BinarySelectorSchema.optional().describe('the executable of any ancestor process'),
    uid: idSet.optional().describe('real user id of the acting process'),
    gid: idSet.optional().describe('real group id of the acting process'),
    cgroup: CgroupSelectorSchema.optional().describe('the cgroup v2 of the acting process'),
    env: stringSet('environment variable name').optional().describe('exec: names present in the new environment'),
    file: PathSelectorSchema.optional().describe('file_open, file_unlink: the file; module_load: the module file'),
    fstype: stringSet('file system type').optional().describe('mount: the file system type, e.g. vfat'),
    source: PathSelectorSchema.optional().describe('mount: the mount source as given to mount(2)'),
    device: valueSet(device)
      .optional()
      .describe('mount: the block device of the new file system'),
    module: stringSet('module name').optional().describe('module_load: the module name (its file name without .ko and compression suffix)'),
    sha256: valueSet(sha256)
      .optional()
      .describe(
        "module_load: the SHA-256 of the module's bytes as the kernel gets them (the .ko file; for a compressed module kmod decompresses, the decompressed .ko). A digest that cannot be taken is on no list: `not: true` matches it",
      ),
    bus: busSet
      .optional()
      .describe("mount: a bus of the block device or of a device above it (a USB stick: usb, also scsi and pci); no block device: matches neither way"),
    removable: z
      .boolean()
      .optional()
      .describe("mount: whether the block device's disk is removable media (/sys/block/<disk>/removable); no block device: matches neither way"),
    address: valueSet(cidr)
      .optional()
      .describe('connect: destination address or network'),
    port: valueSet(port)
      .optional()
      .describe('connect: destination port'),
    fileless: z.boolean().optional().describe('exec: true matches a file that is on no file system: a memfd, or a file already unlinked (or O_TMPFILE); false the others'),
    self: z.boolean().optional().describe("file_unlink: true matches when the file removed or replaced is the acting process's own executable"),
    library: BinarySelectorSchema.optional().describe('mmap_exec: the file mapped executable (a shared library, usually); sha256 from IMA, or the agent without it'),
    target: BinarySelectorSchema.optional().describe("ptrace: the other process's executable: the tracee (attach) or the tracer (traceme)"),
    prog_type: valueSet(z.enum(BPF_PROG_TYPES).describe('a BPF program type: kprobe, tracing, lsm, xdp, socket_filter, ... (BPF_PROG_TYPE_* in lower case)'))
      .optional()
      .describe('bpf: the type of the program being loaded'),
    new_uid: idSet.optional().describe('setid: the effective user id the process changes to'),
    new_gid: idSet.optional().describe('setid: the effective group id the process changes to'),
  })
  .strict();

export const RateLimitSchema = z
  .object({
    events: z.number().int().min(1).describe('events of this rule reported per period, at most'),
    perSeconds: z.number().int().min(1).max(3600).default(1).describe('the period, in seconds (1 to 3600)'),
  })
  .strict()
  .describe('limits the events of a rule, never its decisions; suppressed events are counted');

// The checks below run even when other parts of the same rule or spec failed
// (`when`), so that one load reports every error; they therefore look at the
// value defensively: it is whatever parsed, not the validated output.
const always = { when: () => true };

function asRecord(value: unknown): Record<string, unknown> | undefined {
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
}

export const RuleSchema = z
  .object({
    name,
    hook: z.enum(HOOKS).describe('the hook the rule attaches to'),
    match: MatchSchema.default({}).describe('selectors: all must match (none: every event of the hook)'),
    action: z.enum(ACTIONS).describe('what the rule does to a matching event'),
    mode: z.enum(MODES).optional().describe("overrides the policy's mode for this rule"),
    rateLimit: RateLimitSchema.optional(),
    afterLockPoint: z
      .boolean()
      .optional()
      .describe('in force only from the lock point on (`krsi lock-point`, e.g. when boot is complete) until reboot; before it, the rule does not exist'),
    description: z.string().optional().describe('what the rule is for, in words'),
  })
  .strict()
  .superRefine((value: unknown, ctx) => {
    const rule = asRecord(value);
    const hook = HOOKS.find((h) => h === rule?.hook);
    if (!rule || !hook) return;
    const match = asRecord(rule.match) ?? {};
    const allowed = HOOK_SELECTORS[hook];
    for (const [key, selector] of Object.entries(match)) {
      if (selector === undefined || !Object.hasOwn(MatchSchema.shape, key)) continue; // unknown keys are reported by .strict()
      if (!allowed.includes(key as keyof Match)) {
        ctx.addIssue({
          code: 'custom',
          path: ['match', key],
          message: `hook ${hook} has no "${key}" selector; it has ${allowed.join(', ')}`,
        });
      } else if (isEmptySelector(selector)) {
        ctx.addIssue({ code: 'custom', path: ['match', key], message: `the ${key} selector says nothing to match` });
      }
    }
    const action = ACTIONS.find((a) => a === rule.action);
    if (action && !HOOK_ACTIONS[hook].includes(action)) {
      ctx.addIssue({
        code: 'custom',
        path: ['action'],
        message: `hook ${hook} cannot ${action}; it can ${HOOK_ACTIONS[hook].join(', ')}`,
      });
    }
    const ports = match.port;
    const inner = asRecord(ports)?.in;
    const portValues: unknown[] = Array.isArray(ports) ? ports : Array.isArray(inner) ? inner : [];
    portValues.forEach((p, i) => {
      if (typeof p === 'string' && /^\d{1,5}-\d{1,5}$/.test(p)) {
        const [lo, hi] = p.split('-').map(Number) as [number, number];
        if (lo < 1 || hi > 65535 || lo > hi) {
          ctx.addIssue({ code: 'custom', path: ['match', 'port', ...(Array.isArray(ports) ? [] : ['in']), i], message: `bad port range ${p}` });
        }
      }
    });
  }, always);

// An empty list is refused by the schema itself (at least one value); an
// object form with nothing but `not` would match everything or nothing.
function isEmptySelector(value: unknown): boolean {
  const record = asRecord(value);
  return record !== undefined && Object.entries(record).every(([k, v]) => k === 'not' || v === undefined);
}

export const ListSchema = z
  .object({
    name,
    type: z.enum(LIST_TYPES).describe('what the entries are; it decides which selectors may use the list'),
    description: z.string().optional().describe('what the list is for, in words'),
    entries: z.array(z.string()).optional().describe('entries the list starts with when it does not exist yet'),
  })
  .strict()
  .describe('a dynamic list: global by name, referenced from selectors, changed at run time by `krsi list`');

export const DefaultsSchema = z
  .object(
    Object.fromEntries(HOOKS.map((h) => [h, z.enum(['allow', 'deny']).optional()])) as Record<
      HookName,
      z.ZodOptional<z.ZodEnum<{ allow: 'allow'; deny: 'deny' }>>
    >,
  )
  .strict()
  .describe('what happens when no rule decides, per hook; allow unless said otherwise, and never changed by adding a rule');

/** What a reaction takes from the event that triggers it. */
export const REACTION_SOURCES = {
  'binary.path': 'path',
  'binary.inode': 'inode',
  'binary.sha256': 'sha256',
  'process.cgroup': 'cgroup',
  'process.uid': 'uid',
  'file.path': 'path',
  'connect.address': 'address',
  'module.name': 'module',
} as const satisfies Record<string, ListType>;
export type ReactionSource = keyof typeof REACTION_SOURCES;

const ReactionActionSchema = z.union([
  z
    .object({
      add: z
        .object({
          list: name.describe('a dynamic list (declared in some policy) that a rule enforces'),
          from: z.enum(Object.keys(REACTION_SOURCES) as [ReactionSource, ...ReactionSource[]]).describe('what of the event goes in the list'),
          ttlSeconds: z.number().int().min(1).optional().describe('the entry expires after this long'),
        })
        .strict(),
    })
    .strict()
    .describe('add something of the event to a list: binary.sha256 to a sha256 list denies that content everywhere, process.cgroup to a cgroup list the cgroup'),
  z
    .object({ killTree: z.literal(true).describe('SIGKILL the acting process and every descendant') })
    .strict(),
]);

export const ReactionSchema = z
  .object({
    name,
    on: z
      .object({
        rule: z.string().min(1).describe('a rule of this policy, or policy/rule of another'),
        decision: z.enum(['any', 'allowed', 'denied', 'would_deny']).default('any').describe('which of its events trigger the reaction'),
      })
      .strict(),
    do: z.array(ReactionActionSchema).min(1),
    description: z.string().optional(),
  })
  .strict()
  .describe('the daemon half of KRSI: a signal (a rule’s event) triggers mitigations, carried out by the agent');

export const PolicySchema = z
  .object({
    apiVersion: z.literal(API_VERSION),
    kind: z.literal('Policy'),
    metadata: z.object({ name, description: z.string().optional().describe('what the policy is for, in words') }).strict(),
    spec: z
      .object({
        mode: z.enum(MODES).default('enforce').describe('enforce: rules decide; monitor: rules only report what they would have done'),
        defaults: DefaultsSchema.optional(),
        lists: z.array(ListSchema).default([]),
        rules: z.array(RuleSchema).default([]),
        reactions: z.array(ReactionSchema).default([]),
      })
      .strict()
      .superRefine((value: unknown, ctx) => {
        const spec = asRecord(value);
        if (!spec) return;
        const dup = (items: unknown, what: 'rules' | 'lists'): void => {
          if (!Array.isArray(items)) return;
          const seen = new Map<string, number>();
          items.forEach((item: unknown, i) => {
            const itemName = asRecord(item)?.name;
            if (typeof itemName !== 'string') return;
            const first = seen.get(itemName);
            if (first !== undefined) {
              ctx.addIssue({
                code: 'custom',
                path: [what, i, 'name'],
                message: `${what === 'rules' ? 'rule' : 'list'} ${itemName} is already defined (spec.${what}.${first})`,
              });
            } else seen.set(itemName, i);
          });
        };
        dup(spec.rules, 'rules');
        dup(spec.lists, 'lists');
      }, always),
  })
  .strict()
  .describe('a krsi policy: rules (hook, selectors, action), defaults and dynamic lists');

export type PolicyInput = z.input<typeof PolicySchema>;
export type Policy = z.output<typeof PolicySchema>;
export type Rule = z.output<typeof RuleSchema>;
export type Match = z.output<typeof MatchSchema>;
export type BinarySelector = z.output<typeof BinarySelectorSchema>;
export type PathSelector = z.output<typeof PathSelectorSchema>;
export type ListDecl = z.output<typeof ListSchema>;
export type Reaction = z.output<typeof ReactionSchema>;

/** Which selectors each hook understands; anything else is a validation error. */
export const HOOK_SELECTORS: Readonly<Record<HookName, readonly (keyof Match)[]>> = {
  exec: ['binary', 'parent', 'ancestor', 'uid', 'gid', 'cgroup', 'env', 'fileless'],
  file_open: ['binary', 'parent', 'ancestor', 'uid', 'gid', 'cgroup', 'file'],
  file_unlink: ['binary', 'parent', 'ancestor', 'uid', 'gid', 'cgroup', 'file', 'self'],
  mount: ['binary', 'parent', 'ancestor', 'uid', 'gid', 'cgroup', 'fstype', 'source', 'device', 'bus', 'removable'],
  module_load: ['binary', 'parent', 'ancestor', 'uid', 'gid', 'cgroup', 'module', 'file', 'sha256'],
  connect: ['binary', 'parent', 'ancestor', 'uid', 'gid', 'cgroup', 'address', 'port'],
  mmap_exec: ['binary', 'parent', 'ancestor', 'uid', 'gid', 'cgroup', 'library'],
  ptrace: ['binary', 'parent', 'ancestor', 'uid', 'gid', 'cgroup', 'target'],
  bpf: ['binary', 'parent', 'ancestor', 'uid', 'gid', 'cgroup', 'prog_type'],
  setid: ['binary', 'parent', 'ancestor', 'uid', 'gid', 'cgroup', 'new_uid', 'new_gid'],
};

/** Which actions each hook can carry out. */
export const HOOK_ACTIONS: Readonly<Record<HookName, readonly ActionName[]>> = {
  exec: ['audit', 'allow', 'deny', 'kill', 'secureexec'],
  file_open: ['audit', 'allow', 'deny', 'kill'],
  file_unlink: ['audit', 'allow', 'deny', 'kill'],
  mount: ['audit', 'allow', 'deny', 'kill'],
  module_load: ['audit', 'allow', 'deny', 'kill'],
  connect: ['audit', 'allow', 'deny', 'kill'],
  mmap_exec: ['audit', 'allow', 'deny', 'kill'],
  ptrace: ['audit', 'allow', 'deny', 'kill'],
  bpf: ['audit', 'allow', 'deny', 'kill'],
  setid: ['audit', 'allow', 'deny', 'kill'],
};

/** An address with an optional prefix length, as 16 bytes (IPv4 mapped into ::ffff:0:0/96). */
export interface Cidr {
  bytes: Uint8Array;
  prefixLen: number;
}

export function parseCidr(text: string): Cidr | null {
  const [addr, len, ...rest] = text.split('/');
  if (addr === undefined || rest.length > 0) return null;
  const v4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(addr);
  const bytes = new Uint8Array(16);
  let max: number;
  let offset: number;
  if (v4) {
    const parts = v4.slice(1).map(Number);
    if (parts.some((p) => p > 255)) return null;
    bytes[10] = 0xff;
    bytes[11] = 0xff;
    bytes.set(parts, 12);
    max = 32;
    offset = 96;
  } else {
    const words = expandIpv6(addr);
    if (!words) return null;
    words.forEach((w, i) => {
      bytes[2 * i] = w >> 8;
      bytes[2 * i + 1] = w & 0xff;
    });
    max = 128;
    offset = 0;
  }
  let prefix = max;
  if (len !== undefined) {
    if (!/^\d{1,3}$/.test(len) || Number(len) > max) return null;
    prefix = Number(len);
  }
  return { bytes, prefixLen: offset + prefix };
}

function expandIpv6(text: string): number[] | null {
  if (!/^[0-9a-fA-F:]+$/.test(text) || text.split('::').length > 2) return null;
  const [head, tail] = text.includes('::') ? text.split('::') : [text, undefined];
  const parse = (s: string | undefined): number[] | null => {
    if (s === undefined || s === '') return [];
    const parts = s.split(':');
    if (parts.some((p) => !/^[0-9a-fA-F]{1,4}$/.test(p))) return null;
    return parts.map((p) => parseInt(p, 16));
  };
  const h = parse(head);
  const t = parse(tail);
  if (!h || !t) return null;
  if (tail === undefined) return h.length === 8 ? h : null;
  const missing = 8 - h.length - t.length;
  if (missing < 1) return null;
  return [...h, ...new Array<number>(missing).fill(0), ...t];
}

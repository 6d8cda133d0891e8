// The two per-run scripts the host writes into the run share:
// - setup.sh, sourced by stage 1 (busybox in the initramfs) once the host root
//   is mounted at /newroot: the run's mounts (scratch tmpfs, kernel modules,
//   kernel filesystems, writable shares). It runs there because every command
//   is a busybox applet in RAM; the same commands from the 9p root cost a
//   dynamic exec each, seconds in all under TCG.
// - stage2.sh, PID 1 in the host root after switch_root: the environment,
//   the working directory, the command as a child, its exit status into the
//   run share, and the power-off.
import { existsSync, statSync } from 'node:fs';
import { CliError, ExitCode } from '../cli/exit-codes.js';
import { endSentinelPrefix, startSentinel } from './console.js';
import { GUEST_RUN_DIR, NINEP_MOUNT_OPTIONS } from './initramfs.js';
import type { KernelSeries } from './kernels.js';

export const EXIT_STATUS_FILE = 'exit-status';
/** Serial ports: the command's stdout on the first, its stderr and the kernel console on the second. */
export const GUEST_STDOUT_TTY = '/dev/ttyS0';
export const GUEST_CONSOLE_TTY = 'ttyS1';

const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** Quotes `value` as one word for a POSIX shell: nothing in it is expanded. */
export function shellQuote(value: string): string {
  if (/^[A-Za-z0-9_@%+:,./-]+$/.test(value)) return value;
  return quoteAlways(value);
}

/**
 * Single-quotes even plain words: a command word must never be read as a
 * reserved word (`if`, `!`) or an assignment (`A=1`) — argv is passed exactly.
 */
export function quoteAlways(value: string): string {
  if (value.includes('\0')) throw new CliError('a value for the guest contains a NUL byte', ExitCode.usage);
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

// --- environment -------------------------------------------------------------

/** Host variables the guest inherits by default, besides every KRSI_* one. */
export const PASSED_THROUGH_VARIABLES = [
  'PATH',
  'HOME',
  'TERM',
  'LANG',
  'LC_ALL',
  'CI',
  'NO_COLOR',
  'FORCE_COLOR',
  'NODE_OPTIONS',
] as const;

// Chooses the VM's accelerator on the host; meaningless inside it.
const HOST_ONLY_VARIABLES = new Set(['KRSI_VM_ACCEL']);

const VARIABLE_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

export interface GuestEnvironmentOptions {
  readonly hostEnv: NodeJS.ProcessEnv;
  /** --env arguments: NAME=VALUE, or NAME to pass the host's value. */
  readonly assignments: readonly string[];
  readonly series: KernelSeries;
  /**
   * The guest's stdout is always a serial tty; when the host's is not a
   * terminal, NO_COLOR keeps colour codes out of logs just as on the host.
   */
  readonly hostStdoutIsTty: boolean;
}

export function guestEnvironment(options: GuestEnvironmentOptions): Map<string, string> {
  const { hostEnv } = options;
  const env = new Map<string, string>();
  for (const name of PASSED_THROUGH_VARIABLES) {
    const value = hostEnv[name];
    if (value !== undefined) env.set(name, value);
  }
  for (const [name, value] of Object.entries(hostEnv)) {
    if (name.startsWith('KRSI_') && !HOST_ONLY_VARIABLES.has(name) && value !== undefined && VARIABLE_NAME.test(name)) {
      env.set(name, value);
    }
  }
  if (!env.has('PATH')) env.set('PATH', DEFAULT_PATH);
  if (!env.has('HOME')) env.set('HOME', '/root');
  if (!env.has('TERM')) env.set('TERM', 'dumb');
  if (!env.has('LANG')) env.set('LANG', 'C.UTF-8');
  if (!options.hostStdoutIsTty && !env.has('NO_COLOR') && !env.has('FORCE_COLOR')) env.set('NO_COLOR', '1');

  for (const assignment of options.assignments) {
    const equals = assignment.indexOf('=');
    const name = equals === -1 ? assignment : assignment.slice(0, equals);
    if (!VARIABLE_NAME.test(name)) {
      throw new CliError(`--env ${assignment}: "${name}" is not a valid variable name`, ExitCode.usage);
    }
    if (equals !== -1) env.set(name, assignment.slice(equals + 1));
    else {
      const value = hostEnv[name];
      if (value === undefined) env.delete(name);
      else env.set(name, value);
    }
  }
  env.set('KRSI_IN_VM', '1');
  env.set('KRSI_VM_KERNEL', options.series);
  return env;
}

// --- scratch space -----------------------------------------------------------

export interface ScratchMount {
  readonly path: string;
  readonly mode: string;
}

/** Directories of the read-only host root that get a fresh tmpfs in the guest, when they exist. */
export const SCRATCH_CANDIDATES: readonly ScratchMount[] = [
  { path: '/tmp', mode: '1777' },
  { path: '/var/tmp', mode: '1777' },
  { path: '/root', mode: '0700' },
  { path: '/var/log', mode: '0755' },
  { path: '/var/lib/krsi', mode: '0755' },
];

export function isSameOrInside(path: string, dir: string): boolean {
  return path === dir || path.startsWith(dir.endsWith('/') ? dir : `${dir}/`);
}

function isDirectory(path: string): boolean {
  try {
    return existsSync(path) && statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/**
 * The scratch tmpfs mounts for a run from `cwd`. When a scratch directory
 * contains the working directory (a checkout under /tmp, as CI may make), the
 * tmpfs still goes on, and the working directory is carried through it: bound
 * aside before, moved back onto an empty directory of the same path after.
 */
export function scratchMounts(
  cwd: string,
  directoryExists: (path: string) => boolean = isDirectory,
): { mounts: ScratchMount[]; carried: string[] } {
  const mounts = SCRATCH_CANDIDATES.filter((c) => directoryExists(c.path));
  const carried = mounts.some((m) => isSameOrInside(cwd, m.path) && m.path !== cwd) ? [cwd] : [];
  return { mounts: mounts.filter((m) => m.path !== cwd), carried };
}

// --- the scripts -------------------------------------------------------------

export interface WritableShare {
  /** 9p mount tag. */
  readonly tag: string;
  /** Host path, mounted at the same path in the guest. */
  readonly path: string;
}

export interface SetupOptions {
  readonly kernelVersion: string;
  /** The unpacked lib/modules/<version> in the host's cache. */
  readonly modulesDir: string;
  /** The host's (empty) lib/modules directory, resolved through the /lib symlink. */
  readonly modulesMountPoint: string;
  readonly scratch: readonly ScratchMount[];
  /** Host directories under a scratch directory that stay visible (read-only) through its tmpfs. */
  readonly carried?: readonly string[];
  readonly writableShares: readonly WritableShare[];
}

/** Escapes text for the inside of a double-quoted shell string (the fail messages). */
function inDoubleQuotes(text: string): string {
  return text.replace(/["$`\\]/g, '\\$&').replace(/\n/g, ' ');
}

/**
 * setup.sh: sourced by stage 1, which provides $bb (busybox), fail() and the
 * host root at /newroot with proc, sys and dev already moved into it.
 */
export function setupScript(options: SetupOptions): string {
  const q = shellQuote;
  // The host root as the guest will see it after switch_root.
  const r = (path: string): string => `/newroot${q(path)}`;
  const moduleTarget = `${options.modulesMountPoint}/${options.kernelVersion}`;
  const lines = [
    '# krsi VM set-up for one run, generated by src/vm/guest-scripts.ts;',
    '# sourced by stage 1 before it switches into the host root at /newroot.',
    '',
    "# The running kernel's modules, unpacked in the host's cache, where modprobe",
    '# looks for them. Bound before the scratch tmpfs below can hide the cache.',
    `$bb mount -t tmpfs -o mode=0755 tmpfs ${r(options.modulesMountPoint)} || fail "cannot mount tmpfs on ${inDoubleQuotes(options.modulesMountPoint)}"`,
    `$bb mkdir ${r(moduleTarget)} && $bb mount --bind ${r(options.modulesDir)} ${r(moduleTarget)} || fail "cannot bind the kernel modules"`,
    '# Module autoload runs this helper in the initial root, which becomes the host root.',
    '[ -x /newroot/sbin/modprobe ] && echo /sbin/modprobe > /newroot/proc/sys/kernel/modprobe',
    '',
    '# Writable scratch space over the read-only host root; the working directory,',
    '# if it lies below, is set aside in the initramfs and carried through.',
    ...(options.carried ?? []).map(
      (c, i) => `$bb mkdir -p /carried/${i} && $bb mount --bind ${r(c)} /carried/${i} || fail "cannot set ${inDoubleQuotes(c)} aside"`,
    ),
    ...options.scratch.map(
      (s) => `$bb mount -t tmpfs -o mode=${s.mode},nosuid,nodev tmpfs ${r(s.path)} || fail "cannot mount tmpfs on ${inDoubleQuotes(s.path)}"`,
    ),
    ...(options.carried ?? []).map(
      (c, i) => `$bb mkdir -p ${r(c)} && $bb mount --move /carried/${i} ${r(c)} || fail "cannot carry ${inDoubleQuotes(c)} through the scratch tmpfs"`,
    ),
    '',
    '# Kernel filesystems the agent and its tests use.',
    '$bb mount -t securityfs securityfs /newroot/sys/kernel/security || fail "cannot mount securityfs"',
    '$bb mount -t bpf -o mode=0700 bpf /newroot/sys/fs/bpf || fail "cannot mount bpffs"',
    '[ -d /newroot/sys/kernel/tracing ] && { $bb mount -t tracefs tracefs /newroot/sys/kernel/tracing || fail "cannot mount tracefs"; }',
    '[ -d /newroot/sys/kernel/debug ] && $bb mount -t debugfs debugfs /newroot/sys/kernel/debug 2>/dev/null',
    '$bb mount -t cgroup2 -o nsdelegate cgroup2 /newroot/sys/fs/cgroup || fail "cannot mount cgroup2"',
    '$bb mkdir -p /newroot/dev/pts /newroot/dev/shm',
    '$bb mount -t devpts -o gid=5,mode=0620,ptmxmode=0666 devpts /newroot/dev/pts || fail "cannot mount devpts"',
    '$bb mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /newroot/dev/shm || fail "cannot mount /dev/shm"',
    '# devtmpfs has no /dev/fd and friends; udev would create them.',
    '$bb ln -sfn /proc/self/fd /newroot/dev/fd',
    '$bb ln -sf /proc/self/fd/0 /newroot/dev/stdin',
    '$bb ln -sf /proc/self/fd/1 /newroot/dev/stdout',
    '$bb ln -sf /proc/self/fd/2 /newroot/dev/stderr',
    'echo krsi-vm > /newroot/proc/sys/kernel/hostname',
    '$bb ip link set lo up 2>/dev/null',
  ];
  if (options.writableShares.length > 0) {
    lines.push('', '# Host directories shared read-write at their own paths.');
    for (const share of options.writableShares) {
      lines.push(
        `$bb mkdir -p ${r(share.path)} 2>/dev/null; $bb mount -t 9p -o ${NINEP_MOUNT_OPTIONS} ${share.tag} ${r(share.path)} || fail "cannot mount the writable share ${inDoubleQuotes(share.path)}"`,
      );
    }
  }
  lines.push('');
  return lines.join('\n');
}

export interface Stage2Options {
  readonly token: string;
  readonly env: ReadonlyMap<string, string>;
  readonly cwd: string;
  readonly command: readonly string[];
}

/** stage2.sh: PID 1 in the host root; everything it runs is read over 9p, so it runs little. */
export function stage2Script(options: Stage2Options): string {
  const q = shellQuote;
  const start = startSentinel(options.token);
  const end = endSentinelPrefix(options.token);
  const statusFile = `${GUEST_RUN_DIR}/${EXIT_STATUS_FILE}`;
  const variables = [...options.env].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return [
    '# krsi VM stage 2, generated by src/vm/guest-scripts.ts for one run.',
    '# PID 1 in the host root (read-only 9p), after stage 1 switched into it.',
    '# tty writes return once the data is in the kernel\'s buffer: wait until the',
    '# ports have sent everything (stty sets with TCSADRAIN) before powering off.',
    'power_off() {',
    `\t/bin/busybox stty -F ${GUEST_STDOUT_TTY} onlcr 2>/dev/null`,
    `\t/bin/busybox stty -F /dev/${GUEST_CONSOLE_TTY} onlcr 2>/dev/null`,
    '\techo o > /proc/sysrq-trigger',
    '\t/bin/busybox poweroff -f',
    '}',
    '',
    '# The environment of the command.',
    ...variables.map(([name, value]) => `export ${name}=${q(value)}`),
    '',
    `cd ${q(options.cwd)} || { echo "krsi-vm: stage 2: cannot enter the working directory ${inDoubleQuotes(options.cwd)}" >&2; power_off; }`,
    '# stderr was the initramfs\'s /dev/console, gone since switch_root: reopen it.',
    `exec </dev/null >${GUEST_STDOUT_TTY} 2>/dev/${GUEST_CONSOLE_TTY}`,
    `echo ${q(start)}`,
    `echo ${q(start)} >&2`,
    '# A child, not exec: PID 1 must stay to report the status and power off.',
    `${options.command.map(quoteAlways).join(' ')} </dev/null`,
    'status=$?',
    '# 9p writes reach the host before write() returns: no sync needed.',
    `echo "$status" > ${statusFile}`,
    `echo ${q(end)}"$status@@"`,
    `echo ${q(end)}"$status@@" >&2`,
    'power_off',
    '',
  ].join('\n');
}

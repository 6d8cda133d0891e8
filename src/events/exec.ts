// Exec records (struct krsi_exec_event) into exec events.
import { z } from 'zod';
import {
  KRSI_VERDICT_DENY,
  KRSI_EXEC_ARGV_TRUNCATED,
  KRSI_EXEC_ARGV_UNREADABLE,
  KRSI_EXEC_ENV_INCOMPLETE,
  KRSI_EXEC_ENV_MISMATCH,
  KRSI_EXEC_ENV_READ,
  KRSI_EXEC_FILELESS_DELETED,
  KRSI_EXEC_FILELESS_MEMFD,
  KRSI_EXEC_FILENAME_TRUNCATED,
  KRSI_EXEC_HASH_MISSING,
  KRSI_EXEC_PATH_UNRESOLVED,
  decodeKrsiExecEvent,
  type KrsiTask,
} from '../abi/generated.js';
import { isoNs } from './clock.js';
import type { DecodeContext } from './decode.js';
import { decodePolicyOutcome } from './policy-outcome.js';
import { formatDevice, fromKernelDev } from './devices.js';
import { cString, decodeText, splitNulTerminated } from './text.js';
import { SCHEMA_VERSION, base64, hookEventSchema, u32, u64String, type ProcessInfo } from './event-parts.js';

export function decodeProcess(task: KrsiTask): ProcessInfo {
  const comm = decodeText(cString(task.comm));
  return {
    pid: task.tgid,
    tid: task.pid,
    ppid: task.ppid,
    uid: task.uid,
    gid: task.gid,
    euid: task.euid,
    egid: task.egid,
    comm: comm.text,
    ...(comm.base64 === undefined ? {} : { comm_base64: comm.base64 }),
    cgroup_id: task.cgroupId.toString(),
    start_boottime_ns: task.startNs.toString(),
  };
}

export function decodeExecRecord(view: DataView, ctx: DecodeContext): ExecEvent {
  const raw = decodeKrsiExecEvent(view);
  const { data } = raw;
  // Lengths come from the kernel and are trusted only as far as the bytes
  // that actually arrived: a short record yields short fields, not a throw.
  const pathEnd = Math.min(raw.pathLen, data.length);
  const filenameEnd = Math.min(pathEnd + raw.filenameLen, data.length);
  const argsEnd = Math.min(filenameEnd + raw.argsLen, data.length);
  const envEnd = Math.min(argsEnd + raw.envLen, data.length);

  const path = decodeText(cString(data.subarray(0, pathEnd)));
  const filename = decodeText(cString(data.subarray(pathEnd, filenameEnd)));
  const args = splitNulTerminated(data.subarray(filenameEnd, argsEnd)).map(decodeText);
  const lossyArgs = args.some((a) => a.base64 !== undefined);
  const env = (raw.flags & KRSI_EXEC_ENV_READ) !== 0 ? decodeEnv(data.subarray(argsEnd, envEnd), raw.envTruncated, raw.flags) : {};

  return {
    schema: SCHEMA_VERSION,
    kind: 'exec',
    time: isoNs(ctx.clock.wallNs(raw.hdr.timeNs)),
    decision: raw.policy.verdict === KRSI_VERDICT_DENY ? 'denied' : 'allowed',
    policy: decodePolicyOutcome(raw.policy, ctx.names),
    process: decodeProcess(raw.task),
    exec: {
      path: path.text,
      ...(path.base64 === undefined ? {} : { path_base64: path.base64 }),
      path_unresolved: (raw.flags & KRSI_EXEC_PATH_UNRESOLVED) !== 0,
      filename: filename.text,
      ...(filename.base64 === undefined ? {} : { filename_base64: filename.base64 }),
      filename_truncated: (raw.flags & KRSI_EXEC_FILENAME_TRUNCATED) !== 0,
      dev: formatDevice(fromKernelDev(raw.dev)),
      ino: raw.ino.toString(),
      argc: raw.argc,
      argv: args.map((a) => a.text),
      ...(lossyArgs ? { argv_base64: args.map((a) => a.base64 ?? null) } : {}),
      argv_truncated: (raw.flags & KRSI_EXEC_ARGV_TRUNCATED) !== 0 || (args.length < raw.argc && (raw.flags & KRSI_EXEC_ARGV_UNREADABLE) === 0),
      argv_unreadable: (raw.flags & KRSI_EXEC_ARGV_UNREADABLE) !== 0,
      fileless: (raw.flags & KRSI_EXEC_FILELESS_MEMFD) !== 0 ? 'memfd' : (raw.flags & KRSI_EXEC_FILELESS_DELETED) !== 0 ? 'deleted' : null,
      ...env,
      env_mismatch: (raw.flags & KRSI_EXEC_ENV_MISMATCH) !== 0,
      ...((raw.flags & KRSI_EXEC_HASH_MISSING) !== 0 ? { hash_missing: true } : {}),
    },
  };
}

/**
 * The recorded variables: "NAME=value" strings, each NUL-terminated, in the
 * order of their slots; bit i of `truncated` marks the i-th string's value
 * as cut by the kernel's bound.
 */
export function decodeEnv(
  bytes: Uint8Array,
  truncated: number,
  flags: number,
): Pick<ExecEvent['exec'], 'env' | 'env_base64' | 'env_truncated' | 'env_incomplete'> {
  const env: Record<string, string> = {};
  const env64: Record<string, string> = {};
  const cut: string[] = [];
  splitNulTerminated(bytes).forEach((entry, i) => {
    const eq = entry.indexOf(0x3d);
    if (eq <= 0) return;
    const name = new TextDecoder().decode(entry.subarray(0, eq));
    const value = decodeText(entry.subarray(eq + 1));
    env[name] = value.text;
    if (value.base64 !== undefined) env64[name] = value.base64;
    if (truncated & (1 << i)) cut.push(name);
  });
  return {
    env,
    ...(Object.keys(env64).length ? { env_base64: env64 } : {}),
    env_truncated: cut,
    env_incomplete: (flags & KRSI_EXEC_ENV_INCOMPLETE) !== 0,
  };
}

// --- The events (docs/events.md) ---------------------------------------------

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

export const ExecEventSchema = hookEventSchema('exec', {
  exec: ExecSchema,
});

export type ExecEvent = z.infer<typeof ExecEventSchema>;

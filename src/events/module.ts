// Module records (struct krsi_module_event) into module_load events, and the
// module tracepoints' records (struct krsi_module_state_event) into what the
// agent's tracker of loaded modules needs (src/agent/module-watch.ts).
import { z } from 'zod';
import {
  KRSI_MODULE_FROM_FILE,
  KRSI_MODULE_NAME_UNKNOWN,
  KRSI_MODULE_PATH_UNRESOLVED,
  KRSI_MODULE_SHA256_KNOWN,
  KRSI_MODULE_STATE_LOADED,
  decodeKrsiModuleEvent,
  decodeKrsiModuleStateEvent,
} from '../abi/generated.js';
import { isoNs } from './clock.js';
import type { DecodeContext } from './decode.js';
import { formatDevice, fromKernelDev } from './devices.js';
import { decodeProcess } from './exec.js';
import { decodeHookHead, regions, textField } from './hook-common.js';
import { cString, decodeText } from './text.js';
import { ProcessSchema, SCHEMA_VERSION, base64, device, hookEventSchema, u64String, type ProcessInfo } from './event-parts.js';

export function decodeModuleRecord(view: DataView, ctx: DecodeContext): ModuleLoadEvent {
  const raw = decodeKrsiModuleEvent(view);
  const [name, path] = regions(raw.data, [raw.nameLen, raw.pathLen]) as [Uint8Array, Uint8Array];
  const fromFile = raw.source === KRSI_MODULE_FROM_FILE;
  const nameKnown = (raw.flags & KRSI_MODULE_NAME_UNKNOWN) === 0 && raw.nameLen > 1;
  const pathKnown = fromFile && (raw.flags & KRSI_MODULE_PATH_UNRESOLVED) === 0 && raw.pathLen > 1;
  return {
    ...decodeHookHead('module_load', raw, ctx),
    module: {
      ...(nameKnown ? textField('name', name) : { name: null }),
      source: fromFile ? 'file' : 'memory',
      ...(pathKnown ? textField('path', path) : { path: null }),
      dev: fromFile ? formatDevice(fromKernelDev(raw.dev)) : null,
      ino: fromFile ? raw.ino.toString() : null,
      sha256: (raw.flags & KRSI_MODULE_SHA256_KNOWN) !== 0 ? Buffer.from(raw.sha256).toString('hex') : null,
      size: Number(raw.size),
    },
  };
}

/** A module formed (its init about to run) or freed, as the module tracepoints saw it. */
export interface ModuleStateRecord {
  state: 'loaded' | 'freed';
  /** The kernel's name of the module (struct module's name). */
  name: string;
  /** Exact bytes of the name, when they are not valid UTF-8. */
  nameBase64?: string;
  taints: bigint;
  /** CLOCK_MONOTONIC, ns. */
  timeNs: bigint;
  time: string;
  process: ProcessInfo;
}

export function decodeModuleStateRecord(view: DataView, ctx: Pick<DecodeContext, 'clock'>): ModuleStateRecord {
  const raw = decodeKrsiModuleStateEvent(view);
  const name = decodeText(cString(raw.name));
  return {
    state: raw.state === KRSI_MODULE_STATE_LOADED ? 'loaded' : 'freed',
    name: name.text,
    ...(name.base64 !== undefined ? { nameBase64: name.base64 } : {}),
    taints: raw.taints,
    timeNs: raw.hdr.timeNs,
    time: isoNs(ctx.clock.wallNs(raw.hdr.timeNs)),
    process: decodeProcess(raw.task),
  };
}

// TAINT_* bit numbers (include/linux/panic.h) and the letters /proc/modules
// and `modinfo` use for them.
const TAINT_LETTERS: ReadonlyArray<readonly [number, string]> = [
  [0, 'P'], // proprietary module
  [1, 'F'], // forced load
  [12, 'O'], // out-of-tree module
  [13, 'E'], // unsigned module
  [15, 'K'], // live patch
  [10, 'C'], // staging driver
  [17, 'T'], // struct randomization plugin
];

/** A module's taint bits as letters (O: out of tree, E: unsigned, ...); unknown bits as bitN. */
export function taintLetters(taints: bigint): string[] {
  const out: string[] = [];
  let rest = taints;
  for (const [bit, letter] of TAINT_LETTERS) {
    if (taints & (1n << BigInt(bit))) {
      out.push(letter);
      rest &= ~(1n << BigInt(bit));
    }
  }
  for (let b = 0n; rest !== 0n && b < 64n; b++) {
    if (rest & (1n << b)) {
      out.push(`bit${b}`);
      rest &= ~(1n << b);
    }
  }
  return out;
}

// --- The events (docs/events.md) ---------------------------------------------

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

export const ModuleLoadEventSchema = hookEventSchema('module_load', {
  module: ModuleSchema,
});

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

export type ModuleLoadEvent = z.infer<typeof ModuleLoadEventSchema>;
export type ModuleHiddenEvent = z.infer<typeof ModuleHiddenEventSchema>;

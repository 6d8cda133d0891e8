// Module records (struct krsi_module_event) into module_load events, and the
// module tracepoints' records (struct krsi_module_state_event) into what the
// agent's tracker of loaded modules needs (src/agent/module-watch.ts).
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
import type { ModuleLoadEvent, ProcessInfo } from './schema.js';
import { cString, decodeText } from './text.js';

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

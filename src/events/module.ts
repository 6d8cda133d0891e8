// Module records (struct krsi_module_event) into module_load events.
import {
  KRSI_MODULE_FROM_FILE,
  KRSI_MODULE_NAME_UNKNOWN,
  KRSI_MODULE_PATH_UNRESOLVED,
  decodeKrsiModuleEvent,
} from '../abi/generated.js';
import type { DecodeContext } from './decode.js';
import { formatDevice, fromKernelDev } from './devices.js';
import { decodeHookHead, regions, textField } from './hook-common.js';
import type { ModuleLoadEvent } from './schema.js';

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
    },
  };
}

// setid records (struct krsi_setid_event) into setid events: a change of a
// process's user or group ids, before and after.
import { KRSI_SETID_GID, decodeKrsiSetidEvent } from '../abi/generated.js';
import type { DecodeContext } from './decode.js';
import { decodeHookHead } from './hook-common.js';
import type { SetidEvent } from './schema.js';

// LSM_SETID_*: which call family made the change (setuid, setreuid, setresuid, setfsuid).
const CALLS: Readonly<Record<number, string>> = { 1: '', 2: 're', 4: 'res', 8: 'fs' };

function ids(uids: readonly number[], gids: readonly number[]): SetidEvent['setid']['old'] {
  return {
    uid: uids[0] ?? 0,
    euid: uids[1] ?? 0,
    suid: uids[2] ?? 0,
    fsuid: uids[3] ?? 0,
    gid: gids[0] ?? 0,
    egid: gids[1] ?? 0,
    sgid: gids[2] ?? 0,
    fsgid: gids[3] ?? 0,
  };
}

export function decodeSetidRecord(view: DataView, ctx: DecodeContext): SetidEvent {
  const raw = decodeKrsiSetidEvent(view);
  const kind = raw.kind === KRSI_SETID_GID ? 'gid' : 'uid';
  const family = CALLS[raw.flags];
  return {
    ...decodeHookHead('setid', raw, ctx),
    setid: {
      kind,
      call: family === undefined ? `flags_${raw.flags}` : `set${family}${kind}`,
      old: ids(raw.oldUids, raw.oldGids),
      new: ids(raw.newUids, raw.newGids),
    },
  };
}

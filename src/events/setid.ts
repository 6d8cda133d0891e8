// setid records (struct krsi_setid_event) into setid events: a change of a
// process's user or group ids, before and after.
import { z } from 'zod';
import { KRSI_SETID_GID, decodeKrsiSetidEvent } from '../abi/generated.js';
import type { DecodeContext } from './decode.js';
import { decodeHookHead } from './hook-common.js';
import { hookEventSchema, u32 } from './event-parts.js';

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

// --- The events (docs/events.md) ---------------------------------------------

const IdsSchema = z
  .object({ uid: u32, euid: u32, suid: u32, fsuid: u32, gid: u32, egid: u32, sgid: u32, fsgid: u32 })
  .strict();

export const SetidEventSchema = hookEventSchema('setid', {
  setid: z
    .object({
      kind: z.enum(['uid', 'gid']),
      call: z.string().describe('the call family: setuid, setreuid, setresuid, setfsuid (or their gid twins)'),
      old: IdsSchema.describe('the ids before'),
      new: IdsSchema.describe('the ids the call asks for'),
    })
    .strict(),
});

export type SetidEvent = z.infer<typeof SetidEventSchema>;

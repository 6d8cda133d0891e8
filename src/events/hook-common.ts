// What every policy-hook event shares with exec's: schema, time, decision,
// the policy outcome and the acting process, from the record's first fields.
import { KRSI_VERDICT_DENY, type KrsiEventHeader, type KrsiPolicyRef, type KrsiTask } from '../abi/generated.js';
import { isoNs } from './clock.js';
import type { DecodeContext } from './decode.js';
import { decodeProcess } from './exec.js';
import { decodePolicyOutcome } from './policy-outcome.js';
import { SCHEMA_VERSION, type PolicyOutcome, type ProcessInfo } from './event-parts.js';
import { cString, decodeText } from './text.js';

export interface HookEventHead<K extends string> {
  schema: typeof SCHEMA_VERSION;
  kind: K;
  time: string;
  decision: 'allowed' | 'denied';
  policy: PolicyOutcome;
  process: ProcessInfo;
}

export function decodeHookHead<K extends string>(
  kind: K,
  raw: { hdr: KrsiEventHeader; task: KrsiTask; policy: KrsiPolicyRef },
  ctx: DecodeContext,
): HookEventHead<K> {
  return {
    schema: SCHEMA_VERSION,
    kind,
    time: isoNs(ctx.clock.wallNs(raw.hdr.timeNs)),
    decision: raw.policy.verdict === KRSI_VERDICT_DENY ? 'denied' : 'allowed',
    policy: decodePolicyOutcome(raw.policy, ctx.names),
    process: decodeProcess(raw.task),
  };
}

/**
 * Cuts a record's variable tail into its regions, given their lengths as the
 * kernel claims them: a region is clamped to the bytes that actually arrived.
 */
export function regions(data: Uint8Array, lengths: readonly number[]): Uint8Array[] {
  const out: Uint8Array[] = [];
  let start = 0;
  for (const len of lengths) {
    const end = Math.min(start + len, data.length);
    out.push(data.subarray(Math.min(start, end), end));
    start = end;
  }
  return out;
}

/**
 * A kernel string as `{ [key]: text, [key_base64]?: bytes }`: the exact bytes
 * travel in base64 only when they are not valid UTF-8.
 */
export function textField<K extends string>(key: K, bytes: Uint8Array): { [P in K]: string } & { [P in `${K}_base64`]?: string } {
  const t = decodeText(cString(bytes));
  const out: Record<string, string> = { [key]: t.text };
  if (t.base64 !== undefined) out[`${key}_base64`] = t.base64;
  return out as { [P in K]: string } & { [P in `${K}_base64`]?: string };
}

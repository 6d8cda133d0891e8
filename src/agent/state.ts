// What a restarted agent needs to continue where the last one stopped: the
// policy generation in force and the policies it was compiled from (so that
// the rule bits the kernel reports can be named again). Written atomically
// after every installed generation.
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { z } from 'zod';
import { log } from '../log.js';
import { PolicySchema } from '../policy/schema.js';
import type { LoadedPolicySource } from './control-api.js';

const StateSchema = z.object({
  version: z.literal(1),
  generation: z.number().int().min(0),
  policies: z.array(z.object({ policy: z.unknown(), source: z.string() })),
});

export interface AgentState {
  generation: bigint;
  policies: LoadedPolicySource[];
}

export function readState(path: string): AgentState | null {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return null;
  }
  try {
    const s = StateSchema.parse(JSON.parse(text));
    return {
      generation: BigInt(s.generation),
      policies: s.policies.map((p) => ({ policy: PolicySchema.parse(p.policy), source: p.source })),
    };
  } catch (err) {
    log.warn({ path, err: (err as Error).message }, 'ignoring an unreadable agent state file');
    return null;
  }
}

export function writeState(path: string, state: AgentState): void {
  const text = JSON.stringify(
    { version: 1, generation: Number(state.generation), policies: state.policies },
    (_, v: unknown) => (typeof v === 'bigint' ? v.toString() : v),
  );
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.${process.pid}.tmp`;
  const fd = openSync(tmp, 'w', 0o600);
  try {
    writeSync(fd, `${text}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}

// The registry of hook families: the one list of them. Everything that used
// to keep a list per family (the policy hooks and their selectors, the
// compiler's table ids, the decoders, the attach order, `krsi status`, the
// event schema, docs/events.md, the bench's empty programs) derives it from
// FAMILIES. A new family is a module next to this one and a line below.
import type { z } from 'zod';
import { bpfload } from './bpfload.js';
import { connect } from './connect.js';
import { exec } from './exec.js';
import type { EventSpec, HookFamily, PolicyHookSpec, ProgramSpec, RecordDecoder, SelectorSpec } from './family.js';
import { file } from './file.js';
import { lineage } from './lineage.js';
import { mmap } from './mmap.js';
import { module } from './module.js';
import { mount } from './mount.js';
import { ptrace } from './ptrace.js';
import { self } from './self.js';
import { setid } from './setid.js';

/** In attach order within each role: a family's programs keep the order they are listed in. */
export const FAMILIES = [lineage, exec, file, mount, module, connect, mmap, ptrace, bpfload, setid, self] as const;

type Family = (typeof FAMILIES)[number];
type UnionToIntersection<U> = (U extends unknown ? (x: U) => void : never) extends (x: infer I) => void ? I : never;

/** Every selector of the policy language, by name. */
export type Selectors = UnionToIntersection<Family['selectors']>;
export type SelectorName = keyof Selectors & string;
/** Every fact an event can carry for `krsi policy test`, by key. */
export type Facts = UnionToIntersection<Family['facts']>;
export type HookName = Family['policyHooks'][number]['name'];
export type FamilyEventSchema = Family['events'][number]['schema'];

const families: readonly HookFamily[] = FAMILIES;

function merged<K extends 'selectors' | 'facts'>(key: K): Record<string, HookFamily[K][string]> {
  const out: Record<string, HookFamily[K][string]> = {};
  for (const f of families) {
    for (const [name, value] of Object.entries(f[key])) {
      if (Object.hasOwn(out, name)) throw new Error(`src/families: ${key.slice(0, -1)} ${name} is declared twice (${f.name})`);
      out[name] = value;
    }
  }
  return out;
}

export const SELECTORS = merged('selectors') as unknown as { readonly [K in SelectorName]: Selectors[K] & SelectorSpec };
export const FACTS = merged('facts') as unknown as { readonly [K in keyof Facts]: Facts[K] & z.ZodType };

export const POLICY_HOOKS: readonly PolicyHookSpec<HookName>[] = families.flatMap((f) => f.policyHooks as readonly PolicyHookSpec<HookName>[]);
export const PROGRAMS: readonly (ProgramSpec & { family: string })[] = families.flatMap((f) => f.programs.map((p) => ({ ...p, family: f.name })));
export const FAMILY_EVENTS: readonly EventSpec[] = families.flatMap((f) => f.events);
export const FAMILY_EVENT_SCHEMAS = FAMILY_EVENTS.map((e) => e.schema) as unknown as readonly [FamilyEventSchema, ...FamilyEventSchema[]];
export const RECORD_DECODERS: ReadonlyMap<number, RecordDecoder> = new Map(families.flatMap((f) => f.records.map((r) => [r.type, r.decode] as const)));

// What the types cannot check: names and numbers that must be unique, and
// selectors and programs that must exist.
function unique<T>(what: string, values: readonly T[]): void {
  const seen = new Set<T>();
  for (const v of values) {
    if (seen.has(v)) throw new Error(`src/families: ${what} ${String(v)} is used twice`);
    seen.add(v);
  }
}
unique('program', PROGRAMS.flatMap((p) => (p.variant === undefined ? [p.program] : [p.program, p.variant.program])));
unique('counter index', PROGRAMS.flatMap((p) => (p.counter === undefined ? [] : [p.counter])));
unique('policy hook', POLICY_HOOKS.map((h) => h.name));
unique('policy hook id', POLICY_HOOKS.map((h) => h.id));
unique('selector dimension', Object.values(SELECTORS).map((s: SelectorSpec) => s.dim));
unique('record type', families.flatMap((f) => f.records.map((r) => r.type)));
for (const h of POLICY_HOOKS) {
  for (const s of h.selectors) if (!Object.hasOwn(SELECTORS, s)) throw new Error(`src/families: hook ${h.name} has an unknown selector ${s}`);
  for (const p of h.programs) if (!PROGRAMS.some((x) => x.program === p)) throw new Error(`src/families: hook ${h.name} has an unknown program ${p}`);
}

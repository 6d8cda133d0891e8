// The hook-family registry (src/families/) against the compiled object: every
// program in build/bpf/krsi.bpf.o is listed by a family, attached by the
// agent (or run on demand), and has an empty twin for `krsi bench progs`.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { programsInAttachOrder } from '../../src/agent/hooks.js';
import { selfPrograms } from '../../src/agent/self-protection.js';
import { EventSchema } from '../../src/events/schema.js';
import { FAMILY_EVENT_SCHEMAS, POLICY_HOOKS, PROGRAMS, SELECTORS } from '../../src/families/index.js';
import { HOOK_SELECTORS, HOOKS, MatchSchema } from '../../src/policy/schema.js';
import { benchEmptySources, generateBenchEmpty, objectPrograms, twinName } from '../../scripts/lib/bench-empty.js';

const programs = objectPrograms();

test('every program of krsi.bpf.o is listed by a hook family, and every listed one is in the object', () => {
  const inObject = programs.map((p) => p.name).sort();
  const listed = PROGRAMS.flatMap((p) => (p.variant === undefined ? [p.program] : [p.program, p.variant.program])).sort();
  assert.deepEqual(listed, inObject, 'src/families/ and bpf/hooks/ disagree on the programs');
});

test('the agent attaches every program but the on-demand iterators', () => {
  const order = programsInAttachOrder();
  const attached = new Set([...order.bookkeeping, ...order.enforcing, ...selfPrograms]);
  for (const p of programs) {
    // A variant is attached under its first name, in place of it.
    const spec = PROGRAMS.find((x) => x.program === p.name || x.variant?.program === p.name)!;
    if (spec.role === 'on-demand') assert.match(p.section, /^iter\//, `${p.name} is on demand but not an iterator`);
    else assert.ok(attached.has(spec.program), `${p.name} (${p.section}) is never attached`);
  }
});

test('every hook of krsi.bpf.o has an empty twin, and bench/bpf/empty.bpf.c is what `make abi` generates', () => {
  const empty = readFileSync(benchEmptySources.output, 'utf8');
  for (const p of programs) {
    const twin = twinName(p.section);
    if (twin === null) continue;
    assert.ok(empty.includes(`SEC("?${p.section}")\nint BPF_PROG(${twin})`), `no empty twin for ${p.section} (${p.name})`);
  }
  assert.equal(empty, generateBenchEmpty(), 'bench/bpf/empty.bpf.c is stale: run `make abi`');
});

test('the policy language is the families’: hooks, selectors, events', () => {
  assert.deepEqual([...HOOKS], POLICY_HOOKS.map((h) => h.name));
  assert.deepEqual(Object.keys(MatchSchema.shape).sort(), Object.keys(SELECTORS).sort());
  for (const h of HOOKS) for (const s of HOOK_SELECTORS[h]) assert.ok(Object.hasOwn(SELECTORS, s), `${h}: ${s}`);
  for (const schema of FAMILY_EVENT_SCHEMAS) assert.ok(EventSchema.options.includes(schema));
});

// The kernel/user ABI cannot drift silently: the committed decoders must be
// exactly what the generator writes from the compiled object's BTF, and their
// layouts must match that BTF field by field.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import * as abi from '../../src/abi/generated.js';
import { abiConstants, abiLayouts, abiSources, generateAbiModule } from '../../scripts/lib/abi.js';

test('src/abi/generated.ts is what `make abi` generates from build/bpf/krsi.bpf.o', () => {
  const committed = readFileSync(abiSources.output, 'utf8');
  assert.equal(committed, generateAbiModule(), 'decoders are stale: run `make abi` and commit src/abi/generated.ts');
});

test('every struct of events.h has a layout in the decoders that matches its BTF', () => {
  const layouts = abiLayouts();
  const names = layouts.map((l) => l.name);
  for (const expected of [
    'krsi_event_header',
    'krsi_task',
    'krsi_exec_event',
    'krsi_hook_stats',
    'krsi_policy_ref',
    'krsi_hook_policy',
    'krsi_dim_policy',
    'krsi_dfa_state',
    'krsi_str_key',
    'krsi_prefix_key',
    'krsi_value_key',
    'krsi_net_key',
    'krsi_list_entry',
    'krsi_task_ctx',
  ]) {
    assert.ok(names.includes(expected), `struct ${expected} is missing from the object's BTF`);
  }
  const generated = abi as unknown as Record<string, { name: string; size: number; fields: Record<string, { offset: number; size: number }> }>;
  for (const layout of layouts) {
    const tsName = `${layout.name.replace(/(^|_)([a-z0-9])/g, (_, __, c: string) => c.toUpperCase())}Layout`;
    const ts = generated[tsName];
    assert.ok(ts, `${tsName} is missing`);
    assert.equal(ts.size, layout.size, `${layout.name}: size`);
    for (const f of layout.fields) {
      assert.deepEqual(ts.fields[f.name], { offset: f.offset, size: f.size }, `${layout.name}.${f.name}`);
    }
  }
});

test('ABI structs have no implicit padding', () => {
  for (const layout of abiLayouts()) {
    let end = 0;
    for (const f of layout.fields) {
      assert.equal(f.offset, end, `${layout.name}.${f.name} leaves a hole at ${end}: add an explicit __pad field`);
      end = f.offset + f.size;
    }
    assert.equal(end, layout.size, `${layout.name} has tail padding`);
  }
});

test('constants come from events.h', () => {
  const constants = abiConstants();
  assert.equal(constants.get('KRSI_EXEC_DATA_MAX'), abi.KRSI_PATH_MAX + abi.KRSI_FILENAME_MAX + 2 * abi.KRSI_ARGS_MAX);
  assert.equal(abi.KRSI_EXEC_ARGV_TRUNCATED, 1);
  assert.equal(abi.KrsiExecEventLayout.fields.data.size, abi.KRSI_EXEC_DATA_MAX + abi.KRSI_EXEC_ENV_DATA_MAX);
});

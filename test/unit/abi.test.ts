// The kernel/user ABI cannot drift silently: the committed decoders must be
// exactly what the generator writes from the compiled object's BTF, and their
// layouts must match that BTF field by field.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import * as abi from '../../src/abi/generated.js';
import { abiConstants, abiLayouts, abiSources, generateAbiModule, generateVersionHeader, sharedStructs } from '../../scripts/lib/abi.js';
import { AbiMismatchError, checkObjectAbi } from '../../src/agent/abi-check.js';
import { abiFingerprint, abiVersionOf } from '../../src/abi/layouts.js';

test('src/abi/generated.ts is what `make abi` generates from build/bpf/krsi.bpf.o', () => {
  const committed = readFileSync(abiSources.output, 'utf8');
  assert.equal(committed, generateAbiModule(), 'decoders are stale: run `make abi` and commit src/abi/generated.ts');
});

test('every struct of events.h has a layout in the decoders that matches its BTF', () => {
  const layouts = abiLayouts();
  const names = layouts.map((l) => l.name);
  for (const expected of sharedStructs()) {
    assert.ok(names.includes(expected), `struct ${expected} of events.h is missing from the object's BTF: name it in a program`);
  }
  assert.deepEqual([...abi.KRSI_ABI_STRUCTS], sharedStructs(), 'the fingerprint must cover every struct of events.h');
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

test('KRSI_ABI_VERSION is the fingerprint of the layouts, and bpf/include/abi_version.h is current', () => {
  assert.equal(readFileSync(abiSources.versionHeader, 'utf8'), generateVersionHeader(), 'abi_version.h is stale: run `make abi`');
  assert.equal(abi.KRSI_ABI_VERSION, abiVersionOf(abi.KRSI_ABI_FINGERPRINT));
});

test('a change to any shared layout changes the fingerprint', () => {
  const layouts = abiLayouts();
  const structs = sharedStructs();
  const base = abiFingerprint(layouts, structs);
  for (const name of structs) {
    const changed = layouts.map((l) => (l.name === name ? { ...l, fields: l.fields.map((f, i) => (i === 0 ? { ...f, name: `${f.name}_renamed` } : f)) } : l));
    assert.notEqual(abiFingerprint(changed, structs), base, `struct ${name}`);
  }
});

test('the agent refuses an object whose BTF does not share its ABI', () => {
  checkObjectAbi(`${abiSources.root}${abiSources.object}`);
  assert.throws(() => checkObjectAbi(`${abiSources.root}build/bpf/probe.bpf.o`), AbiMismatchError);
});

// Fuzzing the policy loader: a seeded PRNG mutates valid documents (the
// example policies) structurally and textually, thousands of times. Whatever
// the input, parsing never throws, and either the documents validate or every
// error has a position (line and column >= 1) and a message. Policies that do
// validate print (policyToYaml) to text that loads back to the same policy.
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { parse, stringify } from 'yaml';
import { policyToYaml } from '../../src/policy/define.js';
import { formatPolicyError, loadPolicies, parsePolicyText, validatePolicySet, type LoadResult } from '../../src/policy/load.js';
import { prng } from '../lib/prng.js';

const ITERATIONS = Number(process.env.KRSI_FUZZ_ITERATIONS ?? 3000);
const SEED = Number(process.env.KRSI_FUZZ_SEED ?? 0x6b727369);


const examplesDir = new URL('../../policies/examples/', import.meta.url);
const examples = readdirSync(examplesDir)
  .filter((f) => f.endsWith('.yaml'))
  .sort()
  .map((f) => readFileSync(new URL(f, examplesDir), 'utf8'));

/** The examples as plain data (they are plain YAML: no tags, aliases or 64-bit numbers). */
const plainExamples = examples.map((text) => parse(text) as unknown);

class Fuzzer {
  readonly random: () => number;
  constructor(seed: number) {
    this.random = prng(seed);
  }
  int(n: number): number {
    return Math.floor(this.random() * n);
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)] as T;
  }
  chance(p: number): boolean {
    return this.random() < p;
  }

  string(): string {
    const kinds = [
      () => '',
      () => 'root',
      () => '/tmp/',
      () => '\0',
      () => `/a\0b`,
      () => '\ud800', // a lone surrogate: not encodable as UTF-8
      () => '\ufffd\u202e\u200b',
      () => 'x'.repeat(256 + this.int(300)),
      () => '/'.padEnd(255, 'y'),
      () => '\u00e9'.repeat(128), // 256 bytes in 128 characters
      () => String.fromCharCode(...Array.from({ length: 1 + this.int(12) }, () => this.int(0x3000))),
      () => '*'.repeat(this.int(40)),
      () => '- [ ] : { } # & * ! | > \' " % @ `',
      () => this.pick(['exec', 'connect', 'deny', 'kill', 'secureexec', 'monitor', 'krsi.dev/v1', 'Policy', 'LD_PRELOAD', '8:1', '10.0.0.0/8', '99999-1']),
      () => String(this.int(100000)),
      () => `${this.int(2 ** 31)}:${this.int(2 ** 31)}`,
    ];
    return this.pick(kinds)();
  }

  value(depth = 0): unknown {
    const kinds: (() => unknown)[] = [
      () => this.string(),
      () => this.int(70000) - 1000,
      () => this.pick([0, -1, 1.5, 2 ** 53 + 1, 1e308, Number.MAX_SAFE_INTEGER, 65536]),
      () => this.chance(0.5),
      () => null,
      () => [],
      () => ({}),
      () => (depth < 3 ? Array.from({ length: this.int(4) }, () => this.value(depth + 1)) : 1),
      () => (depth < 3 ? Object.fromEntries(Array.from({ length: this.int(3) }, () => [this.string(), this.value(depth + 1)])) : 'x'),
      () => (this.chance(0.1) ? Array.from({ length: 5000 + this.int(10000) }, (_, i) => i) : [1, 2, 3]), // a huge array
      () => nest(this.int(300), this.chance(0.5)), // deep nesting (deeper: the test below)
    ];
    return this.pick(kinds)();
  }

  /** Mutates a parsed document in place: delete, duplicate, retype, rename. */
  mutateValue(root: unknown): unknown {
    const nodes = collect(root);
    const target = this.pick(nodes);
    if (!target || target.container === null) return this.value();
    const { container, key } = target;
    const c = container as Record<string | number, unknown>;
    switch (this.int(6)) {
      case 0: // delete
        if (Array.isArray(container) && typeof key === 'number') container.splice(key, 1);
        else delete c[key];
        break;
      case 1: // duplicate under another key / as another element
        if (Array.isArray(container)) container.push(structuredClone(c[key]));
        else c[`${String(key)}${this.pick(['', '2', '_', 's'])}`] = structuredClone(c[key]);
        break;
      case 2: // retype
        c[key] = this.value();
        break;
      case 3: // a random string
        c[key] = this.string();
        break;
      case 4: // rename a key
        if (!Array.isArray(container)) {
          const v = c[key];
          delete c[key];
          c[this.string()] = v;
        } else c[key] = [c[key]];
        break;
      default: // wrap in a list or a mapping
        c[key] = this.chance(0.5) ? [c[key]] : { in: c[key], not: this.value() };
    }
    return root;
  }

  /** Mutates text: bytes, lines, indentation, document markers. */
  mutateText(text: string): string {
    const at = this.int(text.length + 1);
    const lines = text.split('\n');
    switch (this.int(12)) {
      case 0:
        return text.slice(0, at) + this.string() + text.slice(at);
      case 1:
        return text.slice(0, at) + text.slice(at + 1 + this.int(20));
      case 2: {
        const i = this.int(lines.length);
        lines.splice(i, 0, lines[i] ?? '');
        return lines.join('\n');
      }
      case 3: {
        const i = this.int(lines.length);
        lines[i] = `${' '.repeat(this.int(5))}${(lines[i] ?? '').trimStart()}`;
        return lines.join('\n');
      }
      case 4:
        return text.slice(0, at) + this.pick(['\n---\n', '\n...\n', '---', '\t', '\r', '\r\n', '\0', '\ufeff', '&a ', '*a ', '!!binary ', '!x ', '<<: ', '? ']) + text.slice(at);
      case 5: // bytes that are not UTF-8, decoded as a reader without validation would
        return text.slice(0, at) + Buffer.from([0xff, 0xc3, 0x28, 0xe2, 0x82]).toString('latin1') + text.slice(at);
      case 6:
        return text.slice(0, at);
      case 7: {
        const i = this.int(lines.length);
        const j = this.int(lines.length);
        [lines[i], lines[j]] = [lines[j] ?? '', lines[i] ?? ''];
        return lines.join('\n');
      }
      case 8: // an alias bomb
        return `${text}\nx: &a [1,1,1,1,1,1,1,1,1,1]\ny: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\nz: [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\n`;
      case 9:
        return text.slice(0, at) + '['.repeat(this.int(300)) + text.slice(at);
      case 10:
        return text.slice(0, at) + String.fromCharCode(this.int(0x20)) + text.slice(at);
      default:
        return text.replace(/: /g, this.pick([':  ', ':', ': !!str ', ': &x ']));
    }
  }
}

function nest(depth: number, asList: boolean): unknown {
  let v: unknown = 1;
  for (let i = 0; i < depth; i++) v = asList ? [v] : { a: v };
  return v;
}

/** Every (container, key) of a value, the root as (null, null). */
function collect(root: unknown): { container: object | null; key: string | number }[] {
  const out: { container: object | null; key: string | number }[] = [{ container: null, key: '' }];
  const walk = (v: unknown, depth: number): void => {
    if (v === null || typeof v !== 'object' || depth > 12) return;
    for (const [k, child] of Object.entries(v)) {
      out.push({ container: v, key: Array.isArray(v) ? Number(k) : k });
      walk(child, depth + 1);
    }
  };
  walk(root, 0);
  return out;
}

function checkResult(r: LoadResult, file: string, input: string): void {
  const context = (): string => `input: ${JSON.stringify(input.slice(0, 2000))}`;
  for (const e of r.errors) {
    assert.equal(e.file, file, context());
    assert.ok(Number.isInteger(e.line) && e.line >= 1, `line ${e.line}: ${context()}`);
    assert.ok(Number.isInteger(e.column) && e.column >= 1, `column ${e.column}: ${context()}`);
    assert.ok(typeof e.message === 'string' && e.message.length > 0, context());
    assert.ok(Array.isArray(e.path), context());
    assert.equal(typeof formatPolicyError(e), 'string');
  }
  for (const e of validatePolicySet(r.policies)) assert.ok(e.line >= 1 && e.message, context());
  for (const p of r.policies) {
    // What is in force prints, and the print loads back to the same policy.
    const printed = policyToYaml(p.policy);
    const back = parsePolicyText(printed, 'printed.yaml');
    assert.deepEqual(back.errors, [], `${printed}\n${context()}`);
    assert.deepEqual(back.policies[0]?.policy, p.policy, context());
  }
}

test(`parsePolicyText never throws: ${ITERATIONS} mutations of the examples (seed ${SEED})`, () => {
  const fuzz = new Fuzzer(SEED);
  let valid = 0;
  let invalid = 0;
  for (let i = 0; i < ITERATIONS; i++) {
    const source = fuzz.pick(examples);
    let text: string;
    let file = 'fuzz.yaml';
    if (fuzz.chance(0.5)) {
      let value: unknown = structuredClone(plainExamples[examples.indexOf(source)]);
      for (let m = 1 + fuzz.int(3); m > 0; m--) {
        try {
          value = fuzz.mutateValue(value);
        } catch {
          // cloning a deeply nested value can exhaust the fuzzer's own stack: keep what there is
        }
      }
      if (fuzz.chance(0.3)) {
        file = 'fuzz.json';
        text = JSON.stringify(value, null, fuzz.chance(0.5) ? 2 : undefined) ?? 'null';
      } else {
        try {
          text = stringify(value, { aliasDuplicateObjects: false });
        } catch {
          text = String(value);
        }
      }
    } else text = source;
    for (let m = fuzz.chance(0.5) ? 1 + fuzz.int(3) : 0; m > 0; m--) text = fuzz.mutateText(text);
    if (fuzz.chance(0.1)) text = `${text}\n---\n${fuzz.pick(examples)}`;

    let result: LoadResult | undefined;
    assert.doesNotThrow(() => {
      result = parsePolicyText(text, file);
    }, `input: ${JSON.stringify(text.slice(0, 2000))}`);

    assert.ok(result);
    checkResult(result, file, text);
    if (result.errors.length === 0) valid++;
    else invalid++;
  }
  // The mutations must exercise both outcomes, or the fuzzer tests little.
  assert.ok(valid > ITERATIONS / 50, `${valid} valid`);
  assert.ok(invalid > ITERATIONS / 2, `${invalid} invalid`);
});

test('extremes: very deep nesting, a huge list, a long line, NUL and control bytes everywhere', () => {
  const deepJson = `${'{"a":'.repeat(20000)}1${'}'.repeat(20000)}`;
  const deepFlow = '['.repeat(20000);
  const deepBlock = Array.from({ length: 3000 }, (_, i) => `${' '.repeat(i)}a:`).join('\n');
  const deepSpec = `apiVersion: krsi.dev/v1\nkind: Policy\nmetadata: {name: p}\nspec: ${'['.repeat(5000)}${']'.repeat(5000)}\n`;
  const hugeList = `apiVersion: krsi.dev/v1\nkind: Policy\nmetadata: {name: p}\nspec:\n  rules:\n    - {name: r, hook: exec, action: deny, match: {uid: [${Array.from({ length: 50000 }, (_, i) => i).join(',')}]}}\n`;
  const longLine = `apiVersion: krsi.dev/v1\nkind: Policy\nmetadata: {name: ${'p'.repeat(1 << 20)}}\nspec: {}\n`;
  const controls = (examples[0] as string).replace(/ /g, (_, i: number) => (i % 7 === 0 ? '\0' : i % 5 === 0 ? '\u0007' : ' '));
  for (const [name, text] of Object.entries({ deepJson, deepFlow, deepBlock, deepSpec, hugeList, longLine, controls })) {
    const file = name === 'deepJson' ? 'x.json' : 'x.yaml';
    let result: LoadResult | undefined;
    assert.doesNotThrow(() => {
      result = parsePolicyText(text, file);
    }, name);
    assert.ok(result, name);
    checkResult(result, file, text);
    if (name !== 'hugeList') assert.ok(result.errors.length > 0, name);
  }
});

test('loadPolicies never throws on files of random bytes and mutated bytes', async () => {
  const fuzz = new Fuzzer(SEED + 1);
  const dir = mkdtempSync(join(tmpdir(), 'krsi-policy-fuzz-'));
  try {
    for (let i = 0; i < 60; i++) {
      const bytes = Buffer.from(fuzz.pick(examples));
      for (let m = 1 + fuzz.int(4); m > 0; m--) bytes[fuzz.int(bytes.length)] = fuzz.int(256);
      const random = Buffer.from(Array.from({ length: fuzz.int(200) }, () => fuzz.int(256)));
      writeFileSync(join(dir, `m${i}.yaml`), bytes);
      writeFileSync(join(dir, `r${i}.json`), random);
    }
    const result = await loadPolicies([dir]);
    assert.ok(result.errors.length > 0);
    for (const e of result.errors) {
      assert.ok(e.line >= 1 && e.column >= 1 && e.message, formatPolicyError(e));
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

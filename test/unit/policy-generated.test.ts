// What is generated from the policy schema cannot drift: the JSON Schema for
// editors and docs/policy.md must be exactly what the generators write, and
// the example policies (which the docs include) must load without errors.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { generatePolicyDocs, policyDocsPaths } from '../../scripts/lib/policy-docs.js';
import { generatePolicyJsonSchema, policySchemaPaths } from '../../scripts/lib/policy-schema.js';
import { HOOKS, HOOK_SELECTORS, MatchSchema } from '../../src/policy/schema.js';
import { formatPolicyError, loadPolicies } from '../../src/policy/load.js';

test('schema/policy.schema.json is what `make docs` generates from src/policy/schema.ts', () => {
  const committed = readFileSync(policySchemaPaths.output, 'utf8');
  assert.equal(committed, generatePolicyJsonSchema(), 'the JSON Schema is stale: run `make docs` and commit schema/policy.schema.json');
  assert.equal(generatePolicyJsonSchema(), committed, 'generation is deterministic');
  const schema = JSON.parse(committed) as { $id: string; title: string; properties: Record<string, unknown> };
  assert.match(schema.$id, /^https:\/\//);
  assert.ok(schema.title);
  assert.deepEqual(Object.keys(schema.properties), ['apiVersion', 'kind', 'metadata', 'spec']);
});

test('docs/policy.md is what `make docs` generates', () => {
  const committed = readFileSync(policyDocsPaths.output, 'utf8');
  assert.equal(committed, generatePolicyDocs(), 'docs/policy.md is stale: edit docs/policy.template.md, run `make docs` and commit docs/policy.md');
});

test('docs/policy.md documents every hook, selector and example', () => {
  const docs = readFileSync(policyDocsPaths.output, 'utf8');
  for (const hook of HOOKS) assert.match(docs, new RegExp(`\\| \`${hook}\` \\| ${HOOK_SELECTORS[hook].map((s) => `\`${s}\``).join(', ')} \\|`));
  for (const selector of Object.keys(MatchSchema.shape)) assert.ok(docs.includes(`[\`${selector}\`](#`), selector);
  for (const file of readdirSync(policyDocsPaths.examples)) assert.ok(docs.includes(`policies/examples/${file}`), file);
});

test('the example policies load without errors', async () => {
  const files = readdirSync(policyDocsPaths.examples).filter((f) => f.endsWith('.yaml'));
  assert.ok(files.length >= 4 && files.length <= 7, `${files.length} examples`);
  const result = await loadPolicies([policyDocsPaths.examples]);
  assert.deepEqual(result.errors.map(formatPolicyError), []);
  assert.equal(result.policies.length, files.length);
  // Each says what it is for: the docs use it as the example's title.
  for (const p of result.policies) assert.ok(p.policy.metadata.description, p.source.file);
});

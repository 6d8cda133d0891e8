// The policy language as JSON Schema, for editors (yaml-language-server,
// VS Code): generated from the zod schema, committed as
// schema/policy.schema.json, and checked by test/unit/policy-schema.test.ts.
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { API_VERSION, HOOK_ACTIONS, HOOK_SELECTORS, HOOKS, PolicySchema } from '../../src/policy/schema.js';

const root = fileURLToPath(new URL('../../', import.meta.url));

export const policySchemaPaths = {
  root,
  output: `${root}schema/policy.schema.json`,
};

export const POLICY_SCHEMA_ID = 'https://krsi.dev/schema/v1/policy.schema.json';

/** The committed text of schema/policy.schema.json: deterministic, newline-terminated. */
export function generatePolicyJsonSchema(): string {
  const { $schema, ...rest } = z.toJSONSchema(PolicySchema, {
    io: 'input', // what a user writes: defaults optional, inode numbers as numbers or strings
    target: 'draft-2020-12',
    unrepresentable: 'any',
    cycles: 'throw',
    reused: 'inline',
  });
  addHookConditions(rest);
  const document = {
    $schema,
    $id: POLICY_SCHEMA_ID,
    title: `krsi policy (${API_VERSION})`,
    ...rest,
  };
  return `${JSON.stringify(document, null, 2)}\n`;
}

type JsonObject = { [key: string]: unknown };

/**
 * Which selectors and actions a rule may use depends on its hook, which zod
 * checks in a refinement that JSON Schema cannot carry; say it with if/then so
 * that editors flag a wrong selector or action as it is typed.
 */
function addHookConditions(schema: JsonObject): void {
  const rule = dig(schema, ['properties', 'spec', 'properties', 'rules', 'items']);
  if (!rule) throw new Error('policy JSON Schema: no spec.rules.items');
  rule.allOf = HOOKS.map((hook) => ({
    if: { properties: { hook: { const: hook } }, required: ['hook'] },
    then: {
      properties: {
        match: { propertyNames: { enum: [...HOOK_SELECTORS[hook]] } },
        action: { enum: [...HOOK_ACTIONS[hook]] },
      },
    },
  }));
}

function dig(value: JsonObject, path: readonly string[]): JsonObject | undefined {
  let v: unknown = value;
  for (const key of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as JsonObject)[key];
  }
  return v !== null && typeof v === 'object' ? (v as JsonObject) : undefined;
}

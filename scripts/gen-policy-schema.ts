// Regenerates schema/policy.schema.json from src/policy/schema.ts. `make docs`
// runs it; test/unit/policy-schema.test.ts fails when the committed file no
// longer matches what this would write.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { generatePolicyJsonSchema, policySchemaPaths } from './lib/policy-schema.js';

mkdirSync(dirname(policySchemaPaths.output), { recursive: true });
writeFileSync(policySchemaPaths.output, generatePolicyJsonSchema());
process.stdout.write(`wrote ${policySchemaPaths.output}\n`);

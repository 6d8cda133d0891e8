// Regenerates docs/policy.md from docs/policy.template.md, the schema
// (src/policy/schema.ts) and policies/examples/. `make docs` runs it;
// test/unit/policy-docs.test.ts fails when the committed file is stale.
import { writeFileSync } from 'node:fs';
import { generatePolicyDocs, policyDocsPaths } from './lib/policy-docs.js';

writeFileSync(policyDocsPaths.output, generatePolicyDocs());
process.stdout.write(`wrote ${policyDocsPaths.output}\n`);

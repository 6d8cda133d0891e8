// docs/events.md is generated from the event schemas (scripts/lib/events-docs.ts):
// the committed file must be what `make docs` writes, and name every event.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { EventSchema } from '../../src/events/schema.js';
import { eventKind } from '../../src/families/family.js';
import { eventsDocsPaths, generateEventsDocs } from '../../scripts/lib/events-docs.js';

test('docs/events.md is what `make docs` generates from the schemas', () => {
  assert.equal(readFileSync(eventsDocsPaths.output, 'utf8'), generateEventsDocs(), 'docs/events.md is stale: run `make docs`');
});

test('docs/events.md has a section for every kind of event', () => {
  const docs = readFileSync(eventsDocsPaths.output, 'utf8');
  for (const schema of EventSchema.options) {
    const kind = eventKind(schema);
    assert.ok(docs.includes(`## \`kind: "${kind}"\``), `no section for ${kind}`);
  }
});

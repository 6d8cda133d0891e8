// Regenerates docs/events.md from docs/events.template.md and the event
// schemas (src/events/, src/families/). `make docs` runs it;
// test/unit/events-docs.test.ts fails when the committed file is stale.
import { writeFileSync } from 'node:fs';
import { eventsDocsPaths, generateEventsDocs } from './lib/events-docs.js';

writeFileSync(eventsDocsPaths.output, generateEventsDocs());
process.stdout.write(`wrote ${eventsDocsPaths.output}\n`);

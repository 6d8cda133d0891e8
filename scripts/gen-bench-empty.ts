// Regenerates bench/bpf/empty.bpf.c from build/bpf/krsi.bpf.o's sections.
// `make abi` runs it; test/unit/families.test.ts fails when it is stale.
import { writeFileSync } from 'node:fs';
import { benchEmptySources, generateBenchEmpty } from './lib/bench-empty.js';

writeFileSync(benchEmptySources.output, generateBenchEmpty());
process.stdout.write(`wrote ${benchEmptySources.output}\n`);

// Regenerates src/abi/generated.ts from build/bpf/krsi.bpf.o's BTF and
// bpf/include/events.h. `make abi` runs it; test/unit/abi.test.ts fails when
// the committed file no longer matches what this would write.
import { writeFileSync } from 'node:fs';
import { abiSources, generateAbiModule } from './lib/abi.js';

const text = generateAbiModule();
writeFileSync(abiSources.output, text);
process.stdout.write(`wrote ${abiSources.output}\n`);

// Regenerates src/abi/generated.ts and bpf/include/abi_version.h from
// build/bpf/krsi.bpf.o's BTF and bpf/include/events.h. `make abi` runs it
// (and rebuilds the objects, which include the new version);
// test/unit/abi.test.ts fails when either committed file is stale.
import { writeFileSync } from 'node:fs';
import { abiSources, generateAbiModule, generateVersionHeader } from './lib/abi.js';

writeFileSync(abiSources.versionHeader, generateVersionHeader());
process.stdout.write(`wrote ${abiSources.versionHeader}\n`);
writeFileSync(abiSources.output, generateAbiModule());
process.stdout.write(`wrote ${abiSources.output}\n`);

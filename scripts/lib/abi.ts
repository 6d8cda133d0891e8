// Where the ABI comes from and where its decoders go.
import { fileURLToPath } from 'node:url';
import { readBtfTypes, readHeaderConstants, structLayouts, type StructLayout } from './btf.js';
import { renderAbiModule } from './abi-render.js';

const root = fileURLToPath(new URL('../../', import.meta.url));

export const abiSources = {
  root,
  object: 'build/bpf/krsi.bpf.o',
  header: 'bpf/include/events.h',
  output: `${root}src/abi/generated.ts`,
};

/** The structs of events.h, as compiled into the agent's BPF object. */
export function abiLayouts(): StructLayout[] {
  return structLayouts(readBtfTypes(`${root}${abiSources.object}`), (name) => name.startsWith('krsi_'));
}

export function abiConstants(): Map<string, number> {
  return readHeaderConstants(`${root}${abiSources.header}`, 'KRSI_');
}

export function generateAbiModule(): string {
  return renderAbiModule(abiLayouts(), abiConstants(), abiSources);
}

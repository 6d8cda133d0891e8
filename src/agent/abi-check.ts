// The check at load that the BPF object shares the agent's ABI: the layouts
// of every struct of events.h, read from the object's own BTF, must hash to
// the fingerprint the agent's decoders were generated with. A mismatch (an
// object and an agent built from different sources) is refused before
// anything is loaded, instead of decoding records as the wrong layout.
import { KRSI_ABI_FINGERPRINT, KRSI_ABI_STRUCTS } from '../abi/generated.js';
import { readObjectBtf } from '../bpf/btf.js';
import { abiFingerprint, structLayouts } from '../abi/layouts.js';

export class AbiMismatchError extends Error {}

export function checkObjectAbi(objectPath: string): void {
  let fingerprint: string;
  try {
    fingerprint = abiFingerprint(structLayouts(readObjectBtf(objectPath), (name) => name.startsWith('krsi_')), KRSI_ABI_STRUCTS);
  } catch (err) {
    throw new AbiMismatchError(`${objectPath} does not share the agent's ABI: ${(err as Error).message}`);
  }
  if (fingerprint !== KRSI_ABI_FINGERPRINT) {
    throw new AbiMismatchError(
      `${objectPath} has ABI ${fingerprint}, the agent ${KRSI_ABI_FINGERPRINT}: rebuild the BPF objects and the agent together (make build)`,
    );
  }
}

// Executable mappings (bpf/hooks/mmap.bpf.c): the mmap_exec policy hook, on
// files mapped executable (mmap) or made executable (mprotect).
import { KRSI_DIM_LIBRARY, KRSI_EVENT_MMAP_EXEC, KRSI_HOOK_FILE_MPROTECT, KRSI_HOOK_MMAP_FILE, KRSI_HOOK_MMAP_HASH, KRSI_PHOOK_MMAP_EXEC } from '../abi/generated.js';
import { MmapExecEventSchema, decodeMmapRecord } from '../events/mmap.js';
import { printable } from '../events/text.js';
import { BinaryFactsSchema } from '../policy/fact-values.js';
import { BinarySelectorSchema } from '../policy/selector-values.js';
import { defineFamily, eventSpec, POLICY_NEEDS, policyHook } from './family.js';

export const mmap = defineFamily({
  name: 'mmap',
  programs: [
    { program: 'mmap_check', hook: 'mmap_file', counter: KRSI_HOOK_MMAP_FILE, role: 'enforcing', needs: POLICY_NEEDS },
    // After mmap_check, so that it runs first and the digest is there for it.
    { program: 'mmap_hash', hook: 'mmap_file (IMA hash)', counter: KRSI_HOOK_MMAP_HASH, role: 'enforcing', needs: ['lsmSleepable', ...POLICY_NEEDS] },
    { program: 'mprotect_check', hook: 'file_mprotect', counter: KRSI_HOOK_FILE_MPROTECT, role: 'enforcing', needs: POLICY_NEEDS },
  ],
  policyHooks: [
    policyHook('mmap_exec', KRSI_PHOOK_MMAP_EXEC, { selectors: ['library'], programs: ['mmap_check', 'mprotect_check'] }),
  ],
  selectors: {
    library: {
      dim: KRSI_DIM_LIBRARY,
      lists: ['path', 'inode', 'sha256'],
      schema: BinarySelectorSchema,
      description: 'mmap_exec: the file mapped executable (a shared library, usually); sha256 from IMA, or the agent without it',
    },
  },
  facts: {
    /** The file mapped executable. */
    library: BinaryFactsSchema,
  },
  records: [{ type: KRSI_EVENT_MMAP_EXEC, decode: decodeMmapRecord }],
  events: [
    eventSpec({
      schema: MmapExecEventSchema,
      doc: `A file mapped executable: \`mmap_file\` with \`PROT_EXEC\` (the dynamic loader's
libraries, the kernel's own mappings at exec), or \`file_mprotect\` adding
\`PROT_EXEC\` to a file mapping. \`library\` is the file, \`program\` the acting
process's executable. Samples and selectors: [signals/content.md](signals/content.md).`,
      what: (e) =>
        `${printable(e.program.path) || '?'} maps ${printable(e.library.path) || `${e.library.dev}:${e.library.ino}`} executable (${e.mmap.source})`,
    }),
  ],
});

// Files (bpf/hooks/file.bpf.c): the file_open and file_unlink policy hooks.
import { z } from 'zod';
import { KRSI_DIM_FILE, KRSI_DIM_SELF, KRSI_EVENT_FILE_OPEN, KRSI_EVENT_FILE_UNLINK, KRSI_HOOK_FILE_OPEN, KRSI_HOOK_PATH_RENAME, KRSI_HOOK_PATH_UNLINK, KRSI_PHOOK_FILE_OPEN, KRSI_PHOOK_FILE_UNLINK } from '../abi/generated.js';
import { FileOpenEventSchema, FileUnlinkEventSchema, decodeFileOpenRecord, decodeFileUnlinkRecord } from '../events/file.js';
import { printable } from '../events/text.js';
import { nonEmpty } from '../policy/fact-values.js';
import { PathSelectorSchema } from '../policy/selector-values.js';
import { defineFamily, eventSpec, POLICY_NEEDS, policyHook } from './family.js';

export const file = defineFamily({
  name: 'file',
  programs: [
    { program: 'file_open', hook: 'file_open', counter: KRSI_HOOK_FILE_OPEN, role: 'enforcing', needs: POLICY_NEEDS },
    { program: 'file_unlink', hook: 'path_unlink', counter: KRSI_HOOK_PATH_UNLINK, role: 'enforcing', needs: POLICY_NEEDS },
    // A rename(2) over an existing file: the file_unlink policy hook.
    { program: 'file_rename', hook: 'path_rename', counter: KRSI_HOOK_PATH_RENAME, role: 'enforcing', needs: POLICY_NEEDS },
  ],
  policyHooks: [
    policyHook('file_open', KRSI_PHOOK_FILE_OPEN, { selectors: ['file'], programs: ['file_open'] }),
    policyHook('file_unlink', KRSI_PHOOK_FILE_UNLINK, { selectors: ['file', 'self'], programs: ['file_unlink', 'file_rename'] }),
  ],
  selectors: {
    file: { dim: KRSI_DIM_FILE, lists: ['path'], schema: PathSelectorSchema, description: 'file_open, file_unlink: the file; module_load: the module file' },
    self: {
      dim: KRSI_DIM_SELF,
      lists: [],
      schema: z.boolean(),
      description: "file_unlink: true matches when the file removed or replaced is the acting process's own executable",
    },
  },
  facts: {
    file: nonEmpty,
    /** file_unlink: the file is the acting process's own executable. */
    self: z.boolean(),
  },
  records: [
    { type: KRSI_EVENT_FILE_OPEN, decode: decodeFileOpenRecord },
    { type: KRSI_EVENT_FILE_UNLINK, decode: decodeFileUnlinkRecord },
  ],
  events: [
    eventSpec({
      schema: FileOpenEventSchema,
      doc: `From the \`file_open\` LSM hook: every open of a file (\`O_PATH\` opens excepted),
including the opens of executables and shared libraries by exec and the
dynamic loader.`,
      what: (e) => `${printable(e.file.path)} (${e.file.flag_names.join('|')})`,
    }),
    eventSpec({
      schema: FileUnlinkEventSchema,
      doc: `From the \`path_unlink\` LSM hook: \`unlink(2)\`/\`unlinkat(2)\` of a name, and from
\`path_rename\` a \`rename(2)\` that replaces a file (\`operation: "rename"\`); not
\`rmdir\`, not removals made inside the kernel, e.g. by overlayfs or nfsd.
The path is built by walking the victim's dentries up to the process's root,
crossing mount points, as \`d_path\` does: Linux 6.1 refuses \`bpf_d_path\` on
this hook, and both kernels use the same walk.`,
      what: (e) =>
        `${printable(e.file.path)}${e.file.operation === 'rename' ? ' (replaced by a rename)' : ''}${e.file.self_delete ? ' [its own executable]' : ''}`,
    }),
  ],
});

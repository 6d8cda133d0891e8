// Kernel modules (bpf/hooks/module.bpf.c): the module_load policy hook, and
// the module tracepoints that feed the agent's tracker of hidden modules.
import { z } from 'zod';
import {
  KRSI_DIM_MODULE,
  KRSI_DIM_SHA256,
  KRSI_EVENT_MODULE_LOAD,
  KRSI_HOOK_KERNEL_LOAD_DATA,
  KRSI_HOOK_KERNEL_READ_FILE,
  KRSI_HOOK_MODULE_FREED,
  KRSI_HOOK_MODULE_HASH,
  KRSI_HOOK_MODULE_LOADED,
  KRSI_PHOOK_MODULE_LOAD,
} from '../abi/generated.js';
import { ModuleHiddenEventSchema, ModuleLoadEventSchema, decodeModuleRecord } from '../events/module.js';
import { printable } from '../events/text.js';
import { nonEmpty } from '../policy/fact-values.js';
import { sha256, stringSet, valueSet } from '../policy/selector-values.js';
import { defineFamily, eventSpec, POLICY_NEEDS, policyHook } from './family.js';

export const module = defineFamily({
  name: 'module',
  programs: [
    // Which modules the kernel formed and freed: the hidden-module tracker's input.
    { program: 'module_loaded', hook: 'module_load (tracepoint)', counter: KRSI_HOOK_MODULE_LOADED, role: 'bookkeeping', needs: ['currentTaskBtf'] },
    { program: 'module_freed', hook: 'module_free (tracepoint)', counter: KRSI_HOOK_MODULE_FREED, role: 'bookkeeping', needs: ['currentTaskBtf'] },
    { program: 'module_read', hook: 'kernel_read_file', counter: KRSI_HOOK_KERNEL_READ_FILE, role: 'enforcing', needs: POLICY_NEEDS },
    // Attached after module_read so that it runs before it: the file's IMA digest.
    { program: 'module_hash', hook: 'kernel_read_file (IMA hash)', counter: KRSI_HOOK_MODULE_HASH, role: 'enforcing', needs: ['lsmSleepable', ...POLICY_NEEDS] },
    // init_module(2): the image is there after the copy, with the module's name.
    { program: 'module_data', hook: 'kernel_post_load_data', counter: KRSI_HOOK_KERNEL_LOAD_DATA, role: 'enforcing', needs: POLICY_NEEDS },
  ],
  policyHooks: [
    policyHook('module_load', KRSI_PHOOK_MODULE_LOAD, { selectors: ['module', 'file', 'sha256'], programs: ['module_read', 'module_data'] }),
  ],
  selectors: {
    module: {
      dim: KRSI_DIM_MODULE,
      lists: ['module'],
      schema: stringSet('module name'),
      description: 'module_load: the module name (its file name without .ko and compression suffix)',
    },
    sha256: {
      dim: KRSI_DIM_SHA256,
      lists: ['sha256'],
      schema: valueSet(sha256),
      description:
        "module_load: the SHA-256 of the module's bytes as the kernel gets them (the .ko file; for a compressed module kmod decompresses, the decompressed .ko). A digest that cannot be taken is on no list: `not: true` matches it",
    },
  },
  facts: {
    module: nonEmpty,
    /** The SHA-256 of the module's bytes; unknown is on no list (`not: true` matches). */
    sha256: z.string().regex(/^[0-9a-f]{64}$/, '64 lower-case hex digits'),
  },
  records: [{ type: KRSI_EVENT_MODULE_LOAD, decode: decodeModuleRecord }],
  events: [
    eventSpec({
      schema: ModuleLoadEventSchema,
      doc: `A kernel module about to be loaded. \`finit_module(2)\` (a file) is seen by the
\`kernel_read_file\` hook; \`init_module(2)\` (an image in memory) by
\`kernel_post_load_data\`, after the image was copied in. Debian's kmod gives
uncompressed modules to \`finit_module\` and decompresses compressed ones
(\`.ko.xz\`, as on Linux 6.12 here) itself for \`init_module\`.`,
      what: (e) =>
        `${e.module.name === null ? '(unknown name)' : printable(e.module.name)} from ${e.module.path === null ? e.module.source : printable(e.module.path)} sha256=${e.module.sha256 ?? '?'}`,
    }),
    eventSpec({
      schema: ModuleHiddenEventSchema,
      doc: `Not from a hook: the agent's comparison of the modules the kernel formed and
never freed (the \`module_load\` and \`module_free\` tracepoints) with
\`/proc/modules\` and \`/sys/module\`. See [signals/modules.md](signals/modules.md).`,
    }),
  ],
});

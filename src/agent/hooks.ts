// The programs of krsi.bpf.o: the kernel hook each is attached to, and its
// counters (index KRSI_HOOK_* of the counters map).
import {
  KRSI_HOOK_BPF,
  KRSI_HOOK_BPRM_CHECK,
  KRSI_HOOK_BPRM_COMMITTED,
  KRSI_HOOK_COUNT,
  KRSI_HOOK_EXEC_ENV,
  KRSI_HOOK_EXEC_HASH,
  KRSI_HOOK_FILE_MPROTECT,
  KRSI_HOOK_FILE_OPEN,
  KRSI_HOOK_MMAP_FILE,
  KRSI_HOOK_MMAP_HASH,
  KRSI_HOOK_PATH_RENAME,
  KRSI_HOOK_PTRACE_ACCESS,
  KRSI_HOOK_PTRACE_TRACEME,
  KRSI_HOOK_SETGID,
  KRSI_HOOK_SETUID,
  KRSI_HOOK_KERNEL_LOAD_DATA,
  KRSI_HOOK_KERNEL_READ_FILE,
  KRSI_HOOK_MODULE_FREED,
  KRSI_HOOK_MODULE_HASH,
  KRSI_HOOK_MODULE_LOADED,
  KRSI_HOOK_PATH_UNLINK,
  KRSI_HOOK_SB_KERN_MOUNT,
  KRSI_HOOK_SB_MOUNT,
  KRSI_HOOK_SOCKET_CONNECT,
  KRSI_HOOK_TASK_FORK,
} from '../abi/generated.js';

export interface HookInfo {
  /** Counter index (KRSI_HOOK_*). */
  index: number;
  /** The kernel hook, as users know it. */
  hook: string;
  /** The BPF program attached to it. */
  program: string;
  /**
   * Enforcing programs are attached once the policy is in place; the others
   * (bookkeeping) first, so that what they track is current from then on.
   */
  enforcing: boolean;
}

export const hooks: readonly HookInfo[] = [
  { index: KRSI_HOOK_TASK_FORK, hook: 'sched_process_fork', program: 'lineage_fork', enforcing: false },
  { index: KRSI_HOOK_BPRM_COMMITTED, hook: 'bprm_committed_creds', program: 'exec_committed', enforcing: false },
  // Sleepable: the new image's environment. Attached after exec_committed so
  // that it runs before it: BPF LSM trampolines run the most recently attached
  // program first.
  { index: KRSI_HOOK_EXEC_ENV, hook: 'bprm_committed_creds (environment)', program: 'exec_env_scan', enforcing: false },
  // What sb_kern_mount cannot see of a mount(2): its source, flags and mountpoint.
  { index: KRSI_HOOK_SB_MOUNT, hook: 'sb_mount', program: 'mount_request', enforcing: false },
  // Which modules the kernel formed and freed: the hidden-module tracker's input.
  { index: KRSI_HOOK_MODULE_LOADED, hook: 'module_load (tracepoint)', program: 'module_loaded', enforcing: false },
  { index: KRSI_HOOK_MODULE_FREED, hook: 'module_free (tracepoint)', program: 'module_freed', enforcing: false },
  { index: KRSI_HOOK_BPRM_CHECK, hook: 'bprm_check_security', program: 'exec_check', enforcing: true },
  // Attached after exec_check so that it runs before it: BPF LSM trampolines
  // run the most recently attached program first.
  { index: KRSI_HOOK_EXEC_HASH, hook: 'bprm_check_security (IMA hash)', program: 'exec_hash', enforcing: true },
  { index: KRSI_HOOK_FILE_OPEN, hook: 'file_open', program: 'file_open', enforcing: true },
  { index: KRSI_HOOK_PATH_UNLINK, hook: 'path_unlink', program: 'file_unlink', enforcing: true },
  { index: KRSI_HOOK_SB_KERN_MOUNT, hook: 'sb_kern_mount', program: 'mount_check', enforcing: true },
  { index: KRSI_HOOK_KERNEL_READ_FILE, hook: 'kernel_read_file', program: 'module_read', enforcing: true },
  // Attached after module_read so that it runs before it: the file's IMA digest.
  { index: KRSI_HOOK_MODULE_HASH, hook: 'kernel_read_file (IMA hash)', program: 'module_hash', enforcing: true },
  // init_module(2): the image is there after the copy, with the module's name.
  { index: KRSI_HOOK_KERNEL_LOAD_DATA, hook: 'kernel_post_load_data', program: 'module_data', enforcing: true },
  { index: KRSI_HOOK_SOCKET_CONNECT, hook: 'socket_connect', program: 'connect_check', enforcing: true },
  // A rename(2) over an existing file: the file_unlink policy hook.
  { index: KRSI_HOOK_PATH_RENAME, hook: 'path_rename', program: 'file_rename', enforcing: true },
  { index: KRSI_HOOK_MMAP_FILE, hook: 'mmap_file', program: 'mmap_check', enforcing: true },
  // After mmap_check, so that it runs first and the digest is there for it.
  { index: KRSI_HOOK_MMAP_HASH, hook: 'mmap_file (IMA hash)', program: 'mmap_hash', enforcing: true },
  { index: KRSI_HOOK_FILE_MPROTECT, hook: 'file_mprotect', program: 'mprotect_check', enforcing: true },
  { index: KRSI_HOOK_PTRACE_ACCESS, hook: 'ptrace_access_check', program: 'ptrace_attach', enforcing: true },
  { index: KRSI_HOOK_PTRACE_TRACEME, hook: 'ptrace_traceme', program: 'ptrace_traceme', enforcing: true },
  { index: KRSI_HOOK_BPF, hook: 'bpf', program: 'bpf_load_check', enforcing: true },
  { index: KRSI_HOOK_SETUID, hook: 'task_fix_setuid', program: 'setuid_check', enforcing: true },
  { index: KRSI_HOOK_SETGID, hook: 'task_fix_setgid', program: 'setgid_check', enforcing: true },
];

for (const h of hooks) {
  if (h.index >= KRSI_HOOK_COUNT || hooks.filter((x) => x.index === h.index).length > 1) {
    throw new Error(`src/agent/hooks.ts: counter index ${h.index} of ${h.program} is out of range or taken twice`);
  }
}

export function programsInAttachOrder(): { bookkeeping: string[]; enforcing: string[] } {
  return {
    bookkeeping: hooks.filter((h) => !h.enforcing).map((h) => h.program),
    enforcing: hooks.filter((h) => h.enforcing).map((h) => h.program),
  };
}

// One clear sentence for the kernel's refusals, instead of a stack trace.
// libbpf's own lines (the verifier log among them) have already gone to the
// diagnostic log on stderr, so only the error's first line is repeated here.
interface KernelError {
  message: string;
  code?: string;
  op?: string;
}

const isKernelError = (err: unknown): err is Error & KernelError => err instanceof Error;

export function explainKernelError(err: unknown): string {
  if (!isKernelError(err)) return String(err);
  const first = err.message.split('\n')[0] ?? err.message;
  if (err.code === 'EPERM' && err.op === 'bpf_object__load') {
    return `the kernel refused to load krsi's BPF LSM programs (EPERM): this kernel cannot run BPF LSM programs; \`krsi doctor\` says why (${first})`;
  }
  return first;
}

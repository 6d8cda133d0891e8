// krsi doctor: can this kernel run krsi, and if not, exactly why not.
import { native, withoutLibbpfLog } from '../bpf/native.js';
import { readKernelFacts, type KernelFacts } from './kernel-facts.js';
import { runProbes, type ProbeName, type ProbeResult } from './probes.js';

export interface Check {
  name: string;
  ok: boolean;
  detail: string;
}

export interface DoctorReport {
  kernel: KernelFacts;
  libbpf: string;
  probes: Record<ProbeName, ProbeResult>;
  checks: Check[];
  /** True only when an LSM program really loaded and attached here. */
  enforcement: boolean;
  /** One paragraph: the verdict and its reason. */
  verdict: string;
}

const hasVerifierLog = (p: ProbeResult): boolean => (p.log ?? '').includes('BEGIN PROG LOAD LOG');

function describeProbe(p: ProbeResult): string {
  if (p.ok) return 'loads and attaches';
  const log = p.step === 'load' ? (hasVerifierLog(p) ? ' (verifier log in --json)' : ', empty verifier log') : '';
  return `${p.step} fails: ${p.code ?? 'error'}${log}`;
}

function verdictFor(kernel: KernelFacts, probes: Record<ProbeName, ProbeResult>, taskStorage: boolean): string {
  const lsm = probes.lsm;
  const bpfActive = kernel.lsms?.includes('bpf') ?? null;
  if (lsm.ok) {
    const lacking = [
      ...(probes.loop.ok ? [] : ['bpf_loop']),
      ...(probes.currentTaskBtf.ok ? [] : ['bpf_get_current_task_btf']),
      ...(taskStorage ? [] : ['task storage maps']),
    ];
    if (lacking.length === 0) return `Enforcement works: BPF LSM programs load and attach on Linux ${kernel.release}.`;
    return (
      `Enforcement is partial: BPF LSM programs load and attach on Linux ${kernel.release}, but the kernel lacks ${lacking.join(', ')}, ` +
      "which krsi's policy programs need: the agent leaves them out and reports their rules degraded (krsi status)."
    );
  }
  const tracing = probes.tracepoint.ok
    ? 'Tracepoint programs load and attach, so tracepoint signals work here, but nothing can be denied.'
    : 'Tracepoint programs fail too.';
  if (!kernel.btf) {
    return `Enforcement is unavailable: the kernel has no BTF (/sys/kernel/btf/vmlinux), which BPF LSM programs need (CONFIG_DEBUG_INFO_BTF=y). ${tracing}`;
  }
  if (bpfActive === false) {
    return `Enforcement is unavailable: 'bpf' is not in the active LSM list (${kernel.lsms?.join(',')}); boot with lsm=${kernel.lsms?.join(',')},bpf. ${tracing}`;
  }
  if (lsm.step === 'load' && lsm.code === 'EPERM' && !hasVerifierLog(lsm)) {
    const listed = bpfActive ? `although 'bpf' is in the active LSM list (${kernel.lsms?.join(',')})` : 'and the active LSM list could not be read';
    return (
      `Enforcement is unavailable: the kernel refuses to load BPF LSM programs with EPERM and an empty verifier log, ${listed}. ` +
      `The refusal comes before verification: this kernel does not provide the BPF trampolines that LSM (and fentry) programs attach through. ` +
      `${tracing} Run krsi's enforcement in a VM with \`krsi vm\`.`
    );
  }
  return `Enforcement is unavailable: an LSM program ${describeProbe(lsm)}${lsm.message ? ` (${lsm.message})` : ''}. ${tracing}`;
}

export function runDoctor(): DoctorReport {
  const kernel = readKernelFacts();
  const probes = runProbes();
  let taskStorage = false;
  try {
    taskStorage = withoutLibbpfLog(() => native.probeMapType('task_storage'));
  } catch {
    // the probe itself failed: reported as missing
  }
  const checks: Check[] = [
    { name: 'kernel', ok: true, detail: `Linux ${kernel.release}` },
    {
      name: 'active LSMs',
      ok: kernel.lsms?.includes('bpf') ?? false,
      detail: kernel.lsms ? `${kernel.lsms.join(',')}${kernel.lsms.includes('bpf') ? '' : " ('bpf' missing)"}` : 'unknown (securityfs unreadable)',
    },
    {
      name: 'CONFIG_BPF_LSM',
      ok: kernel.configBpfLsm !== false,
      detail: kernel.configBpfLsm === null ? 'kernel config not published' : kernel.configBpfLsm ? 'y' : 'not set',
    },
    { name: 'BTF', ok: kernel.btf, detail: kernel.btf ? '/sys/kernel/btf/vmlinux' : 'missing' },
    {
      name: 'lockdown',
      ok: kernel.lockdown !== 'confidentiality',
      detail: kernel.lockdown === null ? 'unknown' : kernel.lockdown === 'confidentiality' ? 'confidentiality (blocks reading kernel memory from BPF)' : kernel.lockdown,
    },
    { name: 'ring buffer', ok: probes.ringbuf.ok, detail: describeProbe(probes.ringbuf) },
    { name: 'tracepoint program', ok: probes.tracepoint.ok, detail: describeProbe(probes.tracepoint) },
    { name: 'LSM program', ok: probes.lsm.ok, detail: describeProbe(probes.lsm) },
    { name: 'sleepable LSM program', ok: probes.lsmSleepable.ok, detail: describeProbe(probes.lsmSleepable) },
    { name: 'task storage map', ok: taskStorage, detail: taskStorage ? 'created' : 'the kernel refuses BPF_MAP_TYPE_TASK_STORAGE' },
    { name: 'bpf_loop', ok: probes.loop.ok, detail: describeProbe(probes.loop) },
    { name: 'bpf_get_current_task_btf', ok: probes.currentTaskBtf.ok, detail: describeProbe(probes.currentTaskBtf) },
    { name: 'bpf_d_path in a task iterator', ok: probes.iterDPath.ok, detail: describeProbe(probes.iterDPath) },
  ];
  const enforcement = probes.lsm.ok && probes.ringbuf.ok && kernel.btf;
  return { kernel, libbpf: native.libbpfVersion(), probes, checks, enforcement, verdict: verdictFor(kernel, probes, taskStorage) };
}

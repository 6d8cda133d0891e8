// Runs one QEMU guest and turns its two serial ports back into the command's
// stdout and stderr. The guest's first port carries the command's stdout; the
// second its stderr and the kernel console. Each is a socket that qemu
// inherits as fd 3 or 4 (node's stdio "pipes" are socket pairs, which qemu's
// socket chardev takes by fd), which keeps qemu's own messages (its stdout
// and stderr) apart from the guest's output.
import { spawn } from 'node:child_process';
import { closeSync, constants, openSync, readFileSync } from 'node:fs';
import type { Readable, Writable } from 'node:stream';
import { CliError, ExitCode } from '../cli/exit-codes.js';
import { GuestOutputFilter } from './console.js';
import { requireTool } from './host-tools.js';
import { HOST_ROOT_TAG, RUN_SHARE_TAG } from './initramfs.js';
import type { PreparedKernel } from './kernels.js';
import { GUEST_CONSOLE_TTY, type WritableShare } from './guest-scripts.js';

export const ACCEL_REQUESTS = ['auto', 'kvm', 'tcg'] as const;
export type AccelRequest = (typeof ACCEL_REQUESTS)[number];
export type Accel = 'kvm' | 'tcg';

export function parseAccelRequest(value: string): AccelRequest {
  if (!(ACCEL_REQUESTS as readonly string[]).includes(value)) {
    throw new CliError(`unknown accelerator "${value}"; choose one of ${ACCEL_REQUESTS.join(', ')}`, ExitCode.usage);
  }
  return value as AccelRequest;
}

export interface KvmProbe {
  readonly kvmOpenable: boolean;
  /** vmx or svm among the CPU flags: without them /dev/kvm can exist yet fail to run a guest. */
  readonly cpuHasVirtualization: boolean;
}

export function probeKvm(): KvmProbe {
  let kvmOpenable = false;
  try {
    closeSync(openSync('/dev/kvm', constants.O_RDWR));
    kvmOpenable = true;
  } catch {
    // absent, or no permission
  }
  let cpuHasVirtualization = false;
  try {
    cpuHasVirtualization = cpuinfoHasVirtualization(readFileSync('/proc/cpuinfo', 'utf8'));
  } catch {
    // no /proc: assume the worst
  }
  return { kvmOpenable, cpuHasVirtualization };
}

export function cpuinfoHasVirtualization(cpuinfo: string): boolean {
  return /^flags\s*:.*\b(vmx|svm)\b/m.test(cpuinfo);
}

/**
 * auto picks KVM only when it can work. On the machines this was developed
 * on, /dev/kvm exists without vmx/svm: KVM then aborts ("failed to set MSR
 * 0x10a") or hangs, while TCG boots in seconds.
 */
export function chooseAccel(request: AccelRequest, probe: KvmProbe): Accel {
  if (request !== 'auto') return request;
  return probe.kvmOpenable && probe.cpuHasVirtualization ? 'kvm' : 'tcg';
}

export interface QemuLaunch {
  readonly accel: Accel;
  readonly kernel: PreparedKernel;
  readonly initramfs: string;
  /** Host directory shared read-write as the run share. */
  readonly runDir: string;
  readonly memoryMib: number;
  readonly cpus: number;
  readonly writableShares: readonly WritableShare[];
  /** Disk images attached as USB sticks (usb-storage on an xHCI controller). */
  readonly usbSticks?: readonly UsbStick[];
}

export interface UsbStick {
  /** A raw disk image on the host. The guest's writes go to a throw-away overlay (snapshot=on). */
  readonly image: string;
  /** Reported as removable media (the disk's removable flag, /sys/block/sdX/removable). */
  readonly removable: boolean;
}

/**
 * `FILE[,removable]`, as `krsi vm --usb-stick` takes it. A file name with a
 * comma is written with the comma doubled, as qemu wants it.
 */
export function parseUsbStick(text: string): UsbStick {
  const parts = text.split(/(?<!,),(?!,)/);
  const image = (parts[0] ?? '').replace(/,,/g, ',');
  const flags = parts.slice(1);
  if (image === '') throw new CliError(`--usb-stick ${text}: name an image file`, ExitCode.usage);
  for (const f of flags) {
    if (f !== 'removable') throw new CliError(`--usb-stick ${text}: unknown flag "${f}"; the only one is removable`, ExitCode.usage);
  }
  return { image, removable: flags.includes('removable') };
}

/**
 * The qemu options for USB sticks: one xHCI controller (qemu-xhci, which
 * the guest's xhci_pci drives) and one usb-storage device per stick. The
 * guest sees them once it loads xhci_pci, usb_storage and sd_mod (/dev/sdX,
 * in the order given). Images are opened with snapshot=on: the guest may
 * write, the file on the host never changes.
 */
export function usbStickArguments(sticks: readonly UsbStick[]): string[] {
  if (sticks.length === 0) return [];
  return [
    '-device',
    'qemu-xhci,id=xhci',
    ...sticks.flatMap((s, i) => [
      '-drive',
      `if=none,id=stick${i},file=${qemuOptionValue(s.image)},format=raw,snapshot=on`,
      '-device',
      `usb-storage,bus=xhci.0,drive=stick${i}${s.removable ? ',removable=on' : ''}`,
    ]),
  ];
}

// Child fds that carry the guest's serial ports.
const GUEST_STDOUT_FD = 3;
const GUEST_STDERR_FD = 4;

export function qemuArguments(launch: QemuLaunch): string[] {
  const share = (path: string, tag: string, readOnly: boolean): string[] => [
    '-virtfs',
    `local,path=${qemuOptionValue(path)},mount_tag=${tag},security_model=none,multidevs=remap${readOnly ? ',readonly=on' : ''}`,
  ];
  return [
    '-machine',
    'q35',
    '-accel',
    // One TCG thread for all vCPUs. Multi-threaded TCG (QEMU 7.2) now and
    // then corrupts what the guest's JITs run: measured here, 11 of 128 node
    // processes started two at a time in a 2-vCPU guest died (SIGSEGV, or
    // wasm "memory access out of bounds"); with thread=single, 0 of 64. It
    // costs about half the guest's throughput; flaky tests cost more.
    launch.accel === 'tcg' ? 'tcg,thread=single' : launch.accel,
    // With TCG, "max" emulates every feature QEMU knows (the BPF JIT and the
    // kernel want a modern CPU); with KVM, the host's own CPU.
    '-cpu',
    launch.accel === 'kvm' ? 'host' : 'max',
    '-smp',
    String(launch.cpus),
    '-m',
    String(launch.memoryMib),
    '-nodefaults',
    '-no-user-config',
    '-display',
    'none',
    '-no-reboot',
    '-chardev',
    `socket,id=guest-stdout,fd=${GUEST_STDOUT_FD}`,
    '-chardev',
    `socket,id=guest-stderr,fd=${GUEST_STDERR_FD}`,
    '-serial',
    'chardev:guest-stdout',
    '-serial',
    'chardev:guest-stderr',
    '-kernel',
    launch.kernel.bootImage,
    '-initrd',
    launch.initramfs,
    ...share('/', HOST_ROOT_TAG, true),
    ...share(launch.runDir, RUN_SHARE_TAG, false),
    ...launch.writableShares.flatMap((s) => share(s.path, s.tag, false)),
    ...usbStickArguments(launch.usbSticks ?? []),
    // Guests block in getrandom() until the pool is seeded; node does that at start.
    '-device',
    'virtio-rng-pci',
    '-append',
    // panic=-1 with -no-reboot: a panicking guest ends qemu at once.
    // lsm=…,bpf where the kernel's default LSM list lacks bpf (5.10).
    [`console=${GUEST_CONSOLE_TTY} quiet panic=-1`, ...(launch.kernel.cmdline ?? [])].join(' '),
  ];
}

/** QEMU splits option values on commas; a literal comma is written twice. */
export function qemuOptionValue(value: string): string {
  return value.replace(/,/g, ',,');
}

export interface QemuRunOptions {
  readonly token: string;
  /** 0: no limit. */
  readonly timeoutMs: number;
  readonly stdout: Writable;
  readonly stderr: Writable;
  readonly signal: AbortSignal;
  /** Called once, when the command's start sentinel arrives. */
  readonly onStarted?: () => void;
  /** Called once, when the command's end sentinel arrives on both ports. */
  readonly onFinished?: () => void;
}

export interface QemuRunResult {
  /** The command's start sentinel arrived on both ports. */
  readonly started: boolean;
  /** Its end sentinel arrived on the stdout port. */
  readonly finished: boolean;
  readonly endStatus: number | undefined;
  readonly bootLog: string;
  /** What qemu itself printed. */
  readonly qemuLog: string;
  readonly exitCode: number | null;
  readonly exitSignal: NodeJS.Signals | null;
  readonly timedOut: boolean;
  readonly aborted: boolean;
}

// After the command's end sentinel, the guest drains its serial ports and
// powers off in well under a second; give it this long before stopping qemu.
const POWER_OFF_GRACE_MS = 15_000;
const TERM_TO_KILL_MS = 3_000;

export async function runQemu(launch: QemuLaunch, options: QemuRunOptions): Promise<QemuRunResult> {
  const qemu = requireTool('qemu-system-x86_64');
  const child = spawn(qemu, qemuArguments(launch), {
    stdio: ['ignore', 'pipe', 'pipe', 'pipe', 'pipe'],
  });

  const qemuLog: string[] = [];
  let timedOut = false;
  let aborted = false;
  const timers: NodeJS.Timeout[] = [];

  const stop = (): void => {
    // Only our own child, by its pid: SIGTERM lets qemu exit cleanly.
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const kill = setTimeout(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }, TERM_TO_KILL_MS);
    kill.unref();
    timers.push(kill);
  };

  const hostStdout = new HostOutput(options.stdout);
  const hostStderr = new HostOutput(options.stderr);
  const stdoutFilter = new GuestOutputFilter(options.token, (b) => hostStdout.write(b, guestStdout));
  const stderrFilter = new GuestOutputFilter(options.token, (b) => hostStderr.write(b, guestStderr));
  const guestStdout = child.stdio[GUEST_STDOUT_FD] as Readable;
  const guestStderr = child.stdio[GUEST_STDERR_FD] as Readable;
  let startedReported = false;
  let graceArmed = false;
  const onGuestData = (filter: GuestOutputFilter) => (chunk: Buffer) => {
    filter.push(chunk);
    if (!startedReported && stdoutFilter.currentPhase !== 'booting' && stderrFilter.currentPhase !== 'booting') {
      startedReported = true;
      options.onStarted?.();
    }
    if (!graceArmed && stdoutFilter.currentPhase === 'finished' && stderrFilter.currentPhase === 'finished') {
      graceArmed = true;
      options.onFinished?.();
      const grace = setTimeout(stop, POWER_OFF_GRACE_MS);
      grace.unref();
      timers.push(grace);
    }
  };
  guestStdout.on('data', onGuestData(stdoutFilter));
  guestStderr.on('data', onGuestData(stderrFilter));
  for (const own of [child.stdio[1], child.stdio[2]] as Readable[]) {
    own.on('data', (chunk: Buffer) => qemuLog.push(chunk.toString('utf8')));
  }

  if (options.timeoutMs > 0) {
    const timeout = setTimeout(() => {
      timedOut = true;
      stop();
    }, options.timeoutMs);
    timers.push(timeout);
  }
  const onAbort = (): void => {
    aborted = true;
    stop();
  };
  if (options.signal.aborted) onAbort();
  else options.signal.addEventListener('abort', onAbort, { once: true });

  try {
    const { code, signal } = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
      child.once('error', reject);
      // 'close' comes after every pipe has drained, so the filters saw everything.
      child.once('close', (exitCode, exitSignal) => resolve({ code: exitCode, signal: exitSignal }));
    });
    stdoutFilter.end();
    stderrFilter.end();
    return {
      started: stdoutFilter.currentPhase !== 'booting' && stderrFilter.currentPhase !== 'booting',
      finished: stdoutFilter.currentPhase === 'finished',
      endStatus: stdoutFilter.endStatus,
      bootLog: [stderrFilter.bootLog, stdoutFilter.bootLog].filter((l) => l.trim() !== '').join('\n'),
      qemuLog: qemuLog.join(''),
      exitCode: code,
      exitSignal: signal,
      timedOut,
      aborted,
    };
  } finally {
    for (const t of timers) clearTimeout(t);
    options.signal.removeEventListener('abort', onAbort);
  }
}

/**
 * One of the host's output streams. Pauses the guest's port while the stream
 * is full, so output never piles up in memory; once the reader is gone
 * (`krsi vm … | head -1`: EPIPE), the rest is dropped and the command runs on.
 * The error listener stays: a write queued before the reader left can still
 * fail after the VM has stopped, and must not crash the process then.
 */
class HostOutput {
  private broken = false;
  private readonly onError = (): void => {
    this.broken = true;
  };

  constructor(private readonly destination: Writable) {
    destination.on('error', this.onError);
  }

  write(bytes: Buffer, source: Readable): void {
    if (this.broken) return;
    if (!this.destination.write(bytes) && !source.isPaused()) {
      source.pause();
      const resume = (): void => {
        this.destination.off('drain', resume);
        this.destination.off('error', resume);
        source.resume();
      };
      this.destination.once('drain', resume);
      this.destination.once('error', resume);
    }
  }
}

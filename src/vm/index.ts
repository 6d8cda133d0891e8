// The VM harness: runs one command in a QEMU guest that boots a Debian kernel
// with BPF LSM (6.1 or 6.12) on the host's own root, shared read-only over
// 9p, and returns the command's exit status. The host kernel refuses BPF LSM
// programs, so everything kernel-facing is tested this way.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, realpathSync, statSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Writable } from 'node:stream';
import { CliError, ExitCode } from '../cli/exit-codes.js';
import { log } from '../log.js';
import { prepareInitramfs, SETUP_NAME, STAGE2_NAME } from './initramfs.js';
import { DEFAULT_KERNEL_SERIES, prepareKernel, type KernelSeries, type PreparedKernel, type Progress } from './kernels.js';
import { requireTool } from './host-tools.js';
import { chooseAccel, probeKvm, runQemu, type AccelRequest, type QemuRunResult, type UsbStick } from './qemu.js';
import { EXIT_STATUS_FILE, guestEnvironment, scratchMounts, setupScript, stage2Script, type WritableShare } from './guest-scripts.js';

export { DEFAULT_KERNEL_SERIES, KERNEL_SERIES, parseKernelSeries, type KernelSeries, type PreparedKernel } from './kernels.js';
export { ACCEL_REQUESTS, parseAccelRequest, parseUsbStick, type Accel, type AccelRequest, type UsbStick } from './qemu.js';

export const DEFAULT_TIMEOUT_SECONDS = 1800;
export const DEFAULT_MEMORY_MIB = 2048;
export const DEFAULT_CPUS = 2;

export interface VmRunOptions {
  readonly series?: KernelSeries;
  /** The command and its arguments, run in the guest from `cwd`. */
  readonly command: readonly string[];
  /** Default: $KRSI_VM_ACCEL, else auto. */
  readonly accel?: AccelRequest;
  /** 0: no limit. */
  readonly timeoutSeconds?: number;
  readonly memoryMib?: number;
  readonly cpus?: number;
  /** NAME=VALUE to set, or NAME to pass the host's value, on top of the defaults. */
  readonly env?: readonly string[];
  /** Host directories the guest may write to, mounted at their own paths. */
  readonly writable?: readonly string[];
  /**
   * Disk images the guest sees as USB sticks, once it loads xhci_pci,
   * usb_storage and sd_mod; $KRSI_VM_USB_STICKS says, in order, which are
   * removable ("fixed,removable").
   */
  readonly usbSticks?: readonly UsbStick[];
  /** Default: the current directory. It must be visible in the guest (not under a scratch tmpfs). */
  readonly cwd?: string;
  /** No progress lines. */
  readonly quiet?: boolean;
  readonly stdout?: Writable;
  readonly stderr?: Writable;
}

export interface PreparedVm {
  readonly kernel: PreparedKernel;
  readonly initramfs: string;
}

export function progressTo(stderr: Writable, quiet: boolean): Progress {
  return quiet ? () => {} : (line) => stderr.write(`krsi vm: ${line}\n`);
}

/** Fetches and unpacks the kernel of `series` and builds its initramfs; instant when cached. */
export async function prepareVm(series: KernelSeries, progress: Progress): Promise<PreparedVm> {
  const kernel = await prepareKernel(series, progress);
  const initramfs = await prepareInitramfs(kernel, progress);
  return { kernel, initramfs };
}

/**
 * The guest's root is the host's, read-only, so it can only mount its
 * kernel's modules where the host already has a directory. With Debian's
 * merged /usr (/lib -> usr/lib) on a machine that has no packaged kernel of
 * its own (a container, or a light VM like the development machines), there
 * is no /usr/lib/modules at all; an empty one changes nothing for the host.
 */
export function ensureModulesMountPoint(): string {
  const mountPoint = join(realpathSync('/lib'), 'modules');
  if (isDirectory(mountPoint)) return mountPoint;
  try {
    mkdirSync(mountPoint, { recursive: true, mode: 0o755 });
  } catch (err) {
    throw new CliError(
      `${mountPoint} does not exist and could not be created (${err instanceof Error ? err.message : String(err)}); ` +
        `create it once as root (\`mkdir -p ${mountPoint}\`): the VM mounts its kernel's modules there`,
      ExitCode.missingDependency,
    );
  }
  log.info({ mountPoint }, 'created an empty directory as the mount point for the VM kernel modules');
  return mountPoint;
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

function writableShares(paths: readonly string[]): WritableShare[] {
  return paths.map((raw, index) => {
    const path = resolve(raw);
    if (!isDirectory(path)) throw new CliError(`--writable ${raw}: not a directory`, ExitCode.usage);
    if (path === '/') throw new CliError('--writable /: the host root cannot be shared writable', ExitCode.usage);
    return { tag: `krsiw${index}`, path };
  });
}

function usbSticks(sticks: readonly UsbStick[]): UsbStick[] {
  return sticks.map((s) => {
    const image = resolve(s.image);
    let ok = false;
    try {
      ok = statSync(image).isFile();
    } catch {
      // reported below
    }
    if (!ok) throw new CliError(`--usb-stick ${s.image}: no such image file`, ExitCode.usage);
    return { image, removable: s.removable };
  });
}

/** Runs `options.command` in a VM and resolves with its exit status. */
export async function runInVm(options: VmRunOptions): Promise<number> {
  const stdout = options.stdout ?? process.stdout;
  const stderr = options.stderr ?? process.stderr;
  const progress = progressTo(stderr, options.quiet === true);
  const series = options.series ?? DEFAULT_KERNEL_SERIES;
  if (options.command.length === 0) throw new CliError('no command to run in the VM', ExitCode.usage);
  const cwd = resolve(options.cwd ?? process.cwd());
  const timeoutSeconds = options.timeoutSeconds ?? DEFAULT_TIMEOUT_SECONDS;
  const shares = writableShares(options.writable ?? []);
  const sticks = usbSticks(options.usbSticks ?? []);
  const env = guestEnvironment({
    hostEnv: process.env,
    assignments: options.env ?? [],
    series,
    hostStdoutIsTty: (stdout as { isTTY?: boolean }).isTTY === true,
  });
  if (sticks.length > 0) env.set('KRSI_VM_USB_STICKS', sticks.map((s) => (s.removable ? 'removable' : 'fixed')).join(','));

  const accelRequest = options.accel ?? parseAccelFromEnv();
  const accel = chooseAccel(accelRequest, probeKvm());
  // Before fetching 100 MB of kernel that could not be booted anyway.
  requireTool('qemu-system-x86_64');
  const { kernel, initramfs } = await prepareVm(series, progress);
  const modulesMountPoint = ensureModulesMountPoint();
  const { mounts: scratch, carried } = scratchMounts(cwd);
  if (!existsSync(cwd)) throw new CliError(`the working directory ${cwd} does not exist`, ExitCode.usage);

  const token = randomBytes(8).toString('hex');
  const runDir = await mkdtemp(join(tmpdir(), 'krsi-vm-'));
  const controller = new AbortController();
  const onSignal = (): void => controller.abort();
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    await writeFile(
      join(runDir, SETUP_NAME),
      setupScript({ kernelVersion: kernel.version, modulesDir: kernel.modulesDir, modulesMountPoint, scratch, carried, writableShares: shares }),
    );
    await writeFile(join(runDir, STAGE2_NAME), stage2Script({ token, env, cwd, command: options.command }));
    progress(`booting Linux ${series} (${kernel.version}, ${accel.toUpperCase()})…`);
    const launchedAt = performance.now();
    const result = await runQemu(
      {
        accel,
        kernel,
        initramfs,
        runDir,
        memoryMib: options.memoryMib ?? DEFAULT_MEMORY_MIB,
        cpus: options.cpus ?? DEFAULT_CPUS,
        writableShares: shares,
        usbSticks: sticks,
      },
      {
        token,
        timeoutMs: timeoutSeconds * 1000,
        stdout,
        stderr,
        signal: controller.signal,
        onStarted: () => log.debug({ series, bootMs: Math.round(performance.now() - launchedAt) }, 'the VM started the command'),
        onFinished: () => log.debug({ series, ms: Math.round(performance.now() - launchedAt) }, 'the command finished in the VM'),
      },
    );
    log.debug({ series, totalMs: Math.round(performance.now() - launchedAt), qemuExit: result.exitCode }, 'the VM stopped');
    return await commandStatus(result, runDir, { series, timeoutSeconds, stderr });
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await rm(runDir, { recursive: true, force: true });
  }
}

function parseAccelFromEnv(): AccelRequest {
  const fromEnv = process.env['KRSI_VM_ACCEL'];
  if (fromEnv === undefined || fromEnv === '') return 'auto';
  if (fromEnv === 'auto' || fromEnv === 'kvm' || fromEnv === 'tcg') return fromEnv;
  throw new CliError(`KRSI_VM_ACCEL=${fromEnv}: choose auto, kvm or tcg`, ExitCode.usage);
}

async function commandStatus(
  result: QemuRunResult,
  runDir: string,
  context: { series: KernelSeries; timeoutSeconds: number; stderr: Writable },
): Promise<number> {
  // The status file is what stage 2 wrote after the command returned; the
  // sentinel's copy only stands in if the share write got lost.
  const fromFile = await readFile(join(runDir, EXIT_STATUS_FILE), 'utf8').then(
    (text) => (/^\d+\s*$/.test(text) ? Number(text.trim()) : undefined),
    () => undefined,
  );
  if (fromFile !== undefined) return fromFile;
  if (result.finished && result.endStatus !== undefined) return result.endStatus;

  const showBootLog = (): void => {
    const parts = [result.bootLog.trimEnd(), result.qemuLog.trimEnd()].filter((p) => p !== '');
    if (parts.length > 0) context.stderr.write(`krsi vm: console output before the command started:\n${parts.join('\n')}\n`);
  };
  if (result.aborted) {
    context.stderr.write('krsi vm: interrupted; the VM was stopped\n');
    return ExitCode.interrupted;
  }
  if (result.timedOut) {
    if (!result.started) showBootLog();
    throw new CliError(`the VM did not finish within ${context.timeoutSeconds} s (--timeout); it was stopped`);
  }
  if (!result.started) {
    showBootLog();
    throw new CliError(
      `the Linux ${context.series} VM stopped before it started the command (boot failure; qemu exit ${result.exitCode ?? result.exitSignal})`,
    );
  }
  if (result.qemuLog.trim() !== '') context.stderr.write(`krsi vm: qemu: ${result.qemuLog.trimEnd()}\n`);
  throw new CliError(
    `the Linux ${context.series} VM stopped before the command finished (a kernel panic? its console is on stderr above)`,
  );
}

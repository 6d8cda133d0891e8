// `krsi vm`: run a command in a QEMU VM booting a Debian kernel with BPF LSM,
// on the host's root shared read-only. `make test` runs the VM test suite
// through it; `--fetch-only` prepares the kernels ahead of time.
import { InvalidArgumentError, Option, type Command } from 'commander';
import {
  ACCEL_REQUESTS,
  DEFAULT_CPUS,
  DEFAULT_KERNEL_SERIES,
  DEFAULT_MEMORY_MIB,
  DEFAULT_TIMEOUT_SECONDS,
  KERNEL_SERIES,
  parseUsbStick,
  prepareVm,
  progressTo,
  runInVm,
  type AccelRequest,
  type KernelSeries,
  type UsbStick,
} from '../../vm/index.js';
import { CliError, ExitCode } from '../exit-codes.js';

interface VmCliOptions {
  kernel?: KernelSeries;
  accel?: AccelRequest;
  timeout: number;
  memory: number;
  cpus: number;
  env: string[];
  writable: string[];
  usbStick: UsbStick[];
  fetchOnly?: boolean;
  quiet?: boolean;
}

function integerAtLeast(minimum: number): (value: string) => number {
  return (value) => {
    if (!/^\d+$/.test(value) || Number(value) < minimum) {
      throw new InvalidArgumentError(`expected an integer of at least ${minimum}`);
    }
    return Number(value);
  };
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

export function registerVm(program: Command): void {
  program
    .command('vm')
    .summary('run a command in a VM booting a BPF LSM kernel (6.1 or 6.12)')
    .description(
      'Run a command in a QEMU VM that boots a Debian kernel with BPF LSM, with the host root shared ' +
        'read-only over 9p and tmpfs on /tmp, /run, /var/tmp, /root and /var/log. The command runs from ' +
        "the current directory; its stdout and stderr come back separately, and its exit status is krsi vm's. " +
        'Kernels are fetched with apt-get download on first use into $KRSI_CACHE_DIR (default /var/cache/krsi).',
    )
    .argument('[command...]', 'the command to run in the guest (after -- if it starts with an option)')
    .passThroughOptions()
    .addOption(
      new Option('--kernel <series>', `kernel series (default ${DEFAULT_KERNEL_SERIES}; --fetch-only: all)`).choices(KERNEL_SERIES),
    )
    .addOption(
      new Option('--accel <mode>', 'auto: KVM when usable, else TCG software emulation')
        .choices(ACCEL_REQUESTS)
        .env('KRSI_VM_ACCEL'),
    )
    .option('--timeout <seconds>', 'stop the VM after this long; 0: never', integerAtLeast(0), DEFAULT_TIMEOUT_SECONDS)
    .option('--memory <MiB>', 'guest memory', integerAtLeast(256), DEFAULT_MEMORY_MIB)
    .option('--cpus <count>', 'guest CPUs', integerAtLeast(1), DEFAULT_CPUS)
    .option('--env <NAME[=VALUE]>', 'set a variable in the guest, or pass the host value of NAME (repeatable)', collect, [])
    .option('--writable <dir>', 'share a host directory read-write at its own path (repeatable)', collect, [])
    .option(
      '--usb-stick <file[,removable]>',
      'attach a raw disk image as a USB stick, removable media with ",removable" (repeatable); the guest sees /dev/sdX once it loads xhci_pci, usb_storage and sd_mod; the image is never written',
      (value: string, previous: UsbStick[]) => [...previous, parseUsbStick(value)],
      [] as UsbStick[],
    )
    .option('--fetch-only', 'only fetch the kernel(s) and build the initramfs; run nothing')
    .option('-q, --quiet', 'no progress lines')
    .addHelpText(
      'after',
      '\nExamples:\n' +
        '  krsi vm --kernel 6.1 -- uname -r\n' +
        "  krsi vm -- sh -c 'cat /sys/kernel/security/lsm'\n" +
        '  krsi vm --fetch-only',
    )
    .action(async (command: string[], options: VmCliOptions) => {
      const stderr = process.stderr;
      if (options.fetchOnly === true) {
        if (command.length > 0) throw new CliError('--fetch-only runs nothing; drop the command', ExitCode.usage);
        const progress = progressTo(stderr, options.quiet === true);
        for (const series of options.kernel === undefined ? KERNEL_SERIES : [options.kernel]) {
          const { kernel, initramfs } = await prepareVm(series, progress);
          process.stdout.write(`Linux ${series}: ${kernel.packageName} (${kernel.version})\n  ${kernel.bootImage}\n  ${initramfs}\n`);
        }
        return;
      }
      if (command.length === 0) {
        throw new CliError('give the command to run in the VM after --, e.g. krsi vm -- uname -r', ExitCode.usage);
      }
      process.exitCode = await runInVm({
        series: options.kernel ?? DEFAULT_KERNEL_SERIES,
        command,
        ...(options.accel === undefined ? {} : { accel: options.accel }),
        timeoutSeconds: options.timeout,
        memoryMib: options.memory,
        cpus: options.cpus,
        env: options.env,
        writable: options.writable,
        usbSticks: options.usbStick,
        quiet: options.quiet === true,
      });
    });
}

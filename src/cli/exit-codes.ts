// Exit codes of the krsi command, documented in docs/operations.md.
export const ExitCode = {
  ok: 0,
  /** The command ran and found a failure (doctor: enforcement unavailable). */
  failure: 1,
  /** Bad command line or bad input; nothing was changed. */
  usage: 2,
  /** The kernel refused what the command needed (load, attach, map update). */
  kernel: 3,
  /** A required tool or file is missing (qemu, a kernel package, the BPF objects). */
  missingDependency: 4,
  /** The agent was stopped by a signal after a clean shutdown. */
  interrupted: 130,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/** An error that the CLI reports as one clear line and a chosen exit code. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: ExitCode = ExitCode.failure,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

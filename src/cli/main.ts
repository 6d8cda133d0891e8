// The krsi command line: one module per command under ./commands.
import { Command, CommanderError } from 'commander';
import { log } from '../log.js';
import { CliError, ExitCode } from './exit-codes.js';
import { registerCommands } from './commands/index.js';

export async function main(argv: readonly string[]): Promise<number> {
  // `krsi … | head`: a closed stdout ends the output, not with a stack trace.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err;
  });
  const program = new Command('krsi')
    .description('Kernel runtime security instrumentation on BPF LSM hooks')
    .showHelpAfterError()
    .enablePositionalOptions()
    .exitOverride();
  registerCommands(program);
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : ExitCode.ok;
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version end here too, with exit code 0.
      return err.exitCode === 0 ? ExitCode.ok : ExitCode.usage;
    }
    if (err instanceof CliError) {
      process.stderr.write(`krsi: ${err.message}\n`);
      return err.exitCode;
    }
    log.error({ err }, 'unexpected failure');
    process.stderr.write(`krsi: ${err instanceof Error ? err.message : String(err)}\n`);
    return ExitCode.failure;
  }
}

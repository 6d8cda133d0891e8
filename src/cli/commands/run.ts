// krsi run: stream exec events as JSON lines (or text) until SIGINT/SIGTERM,
// optionally denying the exec of given files, then detach everything.
import { Command, InvalidArgumentError, Option } from 'commander';
import { Agent } from '../../agent/agent.js';
import { formatEvent, type EventFormat } from '../../events/format.js';
import type { KrsiEvent } from '../../events/schema.js';
import { InputError } from '../../errors.js';
import { log } from '../../log.js';
import { CliError, ExitCode } from '../exit-codes.js';
import { explainKernelError } from '../kernel-errors.js';

interface RunOptions {
  denyExec: string[];
  format: EventFormat;
  allowed: boolean;
  argsMax?: number;
}

const collect = (value: string, previous: string[]): string[] => [...previous, value];

function parseArgsMax(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 4096) throw new InvalidArgumentError('an integer from 0 to 4096');
  return n;
}

export function registerRun(program: Command): void {
  program
    .command('run')
    .description('attach the BPF LSM programs and stream events until SIGINT or SIGTERM')
    .option('--deny-exec <path>', 'deny, in the kernel, every exec of this file (by device and inode; repeatable)', collect, [])
    .addOption(new Option('--format <format>', 'event output').choices(['json', 'text']).default('json'))
    .option('--no-allowed', 'report only denied execs')
    .option('--args-max <bytes>', 'bytes of argv per event (0-4096)', parseArgsMax)
    .action(async (opts: RunOptions) => {
      process.exitCode = await run(opts);
    });
}

async function run(opts: RunOptions): Promise<number> {
  const write = (event: KrsiEvent): void => {
    process.stdout.write(`${formatEvent(event, opts.format)}\n`);
  };
  let agent: Agent;
  try {
    agent = Agent.start({
      denyExec: opts.denyExec,
      emitAllowed: opts.allowed,
      ...(opts.argsMax === undefined ? {} : { argsMax: opts.argsMax }),
      onEvent: write,
    });
  } catch (err) {
    if (err instanceof InputError) throw new CliError(err.message, ExitCode.usage);
    throw new CliError(explainKernelError(err), ExitCode.kernel);
  }
  write(agent.lifecycleEvent('ready'));
  log.info({ programs: agent.programs, denied: agent.denied.map((d) => d.path) }, 'attached');

  const reason = await new Promise<string>((resolve) => {
    process.once('SIGINT', () => resolve('SIGINT'));
    process.once('SIGTERM', () => resolve('SIGTERM'));
    // The reader of the event stream went away (`krsi run | head`).
    process.stdout.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'stdout error'));
  });
  log.info({ reason }, 'stopping');
  const final = agent.stop();
  if (final && process.stdout.writable) write(final);
  return ExitCode.ok;
}

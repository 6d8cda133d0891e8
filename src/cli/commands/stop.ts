// krsi stop: ask the running agent, over its root-only control socket, to
// stop as it does on SIGTERM (everything detached), and wait for it.
import { InvalidArgumentError, type Command } from 'commander';
import { CliError, ExitCode } from '../exit-codes.js';
import { addSocketOption, out, withAgent, type SocketOptions } from './agent-connection.js';

function seconds(value: string): number {
  if (!/^\d+$/.test(value) || Number(value) < 1) throw new InvalidArgumentError('a whole number of seconds, at least 1');
  return Number(value);
}

export function registerStop(program: Command): void {
  addSocketOption(
    program
      .command('stop')
      .summary('stop the running agent cleanly')
      .description('stop the running agent cleanly (its programs are detached, as on SIGTERM); waits until it has stopped')
      .option('--timeout <seconds>', 'how long to wait for the agent to stop', seconds, 30),
  ).action(async (opts: SocketOptions & { timeout: number }) => {
    const outcome = await withAgent(opts.socket, (client) => client.stop({ timeoutMs: opts.timeout * 1000 }));
    if (!outcome.stopped) {
      throw new CliError(`asked the agent (pid ${outcome.pid}) to stop, but it has not closed its control socket after ${opts.timeout} s`, ExitCode.failure);
    }
    out(`agent (pid ${outcome.pid}) stopped`);
    process.exitCode = ExitCode.ok;
  });
}

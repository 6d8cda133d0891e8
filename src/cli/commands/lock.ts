// krsi lock: make the policy in force immutable until reboot, like
// auditd's -e 2. The kernel enforces it: the policy maps are frozen.
import type { Command } from 'commander';
import { ExitCode } from '../exit-codes.js';
import { addSocketOption, out, withAgent, type SocketOptions } from './agent-connection.js';

export function registerLock(program: Command): void {
  addSocketOption(
    program
      .command('lock')
      .summary('make the policy in force immutable until reboot')
      .description(
        'make the policy in force immutable until reboot (like auditd -e 2): its maps are frozen in the kernel, so no process, ' +
          'the agent and its successors included, can install another generation; dynamic lists still change',
      ),
  ).action(async (opts: SocketOptions) => {
    const r = await withAgent(opts.socket, (client) => client.lock());
    out(`policy generation ${r.generation} is locked until reboot`);
    process.exitCode = ExitCode.ok;
  });
}

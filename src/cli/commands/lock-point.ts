// krsi lock-point: from now until reboot, the rules marked
// `afterLockPoint: true` are in force (e.g. no USB mounts, no module loads
// once boot is complete). One-way: the kernel map is frozen.
import type { Command } from 'commander';
import { ExitCode } from '../exit-codes.js';
import { addSocketOption, json, out, withAgent, type SocketOptions } from './agent-connection.js';

export function registerLockPoint(program: Command): void {
  addSocketOption(
    program
      .command('lock-point')
      .summary('reach the lock point: rules with afterLockPoint are in force until reboot')
      .description(
        'reach the lock point: from now until reboot, the rules with `afterLockPoint: true` are in force (e.g. no ' +
          'mounts from USB sticks, no module loads once boot is complete). One-way: the agent freezes the kernel map ' +
          'that says so, and an agent restarted before reboot finds it reached. Run it from a unit ordered after ' +
          'multi-user.target, or by hand.',
      )
      .option('--json', 'print the result as JSON'),
  ).action(async (opts: SocketOptions & { json?: boolean }) => {
    const r = await withAgent(opts.socket, (client) => client.reachLockPoint());
    out(opts.json ? json(r) : r.already ? `the lock point was already reached at ${r.since}` : `lock point reached at ${r.since}`);
    process.exitCode = ExitCode.ok;
  });
}

// krsi reload: the running agent loads its policy files (`krsi run --policy`)
// again and applies them, all or nothing: the unit's ExecReload, since a
// protected agent refuses signals (SIGHUP) from other processes.
import type { Command } from 'commander';
import { ExitCode } from '../exit-codes.js';
import { addSocketOption, out, withAgent, type SocketOptions } from './agent-connection.js';

export function registerReload(program: Command): void {
  addSocketOption(
    program.command('reload').summary("reload the running agent's policy files (all or nothing)"),
  ).action(async (opts: SocketOptions) => {
    const r = await withAgent(opts.socket, (client) => client.call('reload', {}));
    out(`policy generation ${r.generation} in force: ${r.rules} rules, ${r.entries} table entries (compiled in ${r.compileMs.toFixed(1)} ms, swapped in ${r.swapMs.toFixed(1)} ms)`);
    process.exitCode = ExitCode.ok;
  });
}

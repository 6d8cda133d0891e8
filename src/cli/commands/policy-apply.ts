// krsi policy apply: validate locally, then make these policies the agent's
// whole policy set.
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { CliError, ExitCode } from '../exit-codes.js';
import { addSocketOption, json, out, withAgent, type SocketOptions } from './agent-connection.js';
import { loadChecked, printPolicyErrors, summarizePolicies } from './policy-validate.js';

interface ApplyOptions extends SocketOptions {
  json?: boolean;
}

export function registerPolicyApply(policy: Command): void {
  addSocketOption(
    policy
      .command('apply')
      .summary("replace the running agent's policies with these")
      .description(
        'validate policy files, then send them to the running agent. The set sent REPLACES the agent\'s current set: ' +
          'a policy not given here is removed. Nothing is sent when a file is invalid (exit 2), and the agent ' +
          'changes nothing when the set does not compile.',
      )
      .argument('<paths...>', 'policy files (.yaml, .yml, .json) and directories of them: the whole new set')
      .option('--json', 'print the agent\'s answer as JSON'),
  ).action(async (paths: string[], opts: ApplyOptions) => {
    const loaded = await loadChecked(paths);
    if (loaded.errors.length > 0) {
      await printPolicyErrors(loaded.errors);
      throw new CliError(`${loaded.errors.length} ${loaded.errors.length === 1 ? 'error' : 'errors'}; nothing was applied`, ExitCode.usage);
    }
    const policies = loaded.policies.map((l) => ({ policy: l.policy, source: resolve(l.source.file) }));
    const result = await withAgent(opts.socket, (client) => client.applyPolicies(policies));
    if (opts.json) out(json(result));
    else {
      out(
        `applied generation ${result.generation}: ${summarizePolicies(loaded)}; ${result.rules} rules and ${result.entries} entries in the kernel ` +
          `(compile ${result.compileMs.toFixed(1)} ms, swap ${result.swapMs.toFixed(1)} ms)`,
      );
    }
    process.exitCode = ExitCode.ok;
  });
}

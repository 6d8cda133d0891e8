// krsi policy show: the policies in force in the running agent, as YAML
// documents (which `krsi policy apply` takes back) with their sources.
import type { Command } from 'commander';
import { ExitCode } from '../exit-codes.js';
import { addSocketOption, json, out, withAgent, type SocketOptions } from './agent-connection.js';

interface ShowOptions extends SocketOptions {
  json?: boolean;
}

export function registerPolicyShow(policy: Command): void {
  addSocketOption(
    policy
      .command('show')
      .summary('print the policies in force in the running agent')
      .description('print the policies in force in the running agent: its generation, then each policy as a YAML document with its source')
      .option('--json', 'print {generation, policies: [{source, policy}]} as JSON'),
  ).action(async (opts: ShowOptions) => {
    const current = await withAgent(opts.socket, (client) => client.currentPolicies());
    if (opts.json) {
      out(json(current));
    } else {
      const { policyToYaml } = await import('../../policy/define.js');
      const n = current.policies.length;
      const lines = [`# generation ${current.generation}: ${n === 0 ? 'no policies' : `${n} ${n === 1 ? 'policy' : 'policies'}`}`];
      for (const p of current.policies) {
        lines.push('---', `# source: ${p.source.replace(/[\r\n]/g, ' ')}`, policyToYaml(p.policy).trimEnd());
      }
      out(lines.join('\n'));
    }
    process.exitCode = ExitCode.ok;
  });
}

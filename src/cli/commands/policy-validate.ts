// krsi policy validate: load policy files, check each and the set, report
// every error as file:line:col. No agent, no kernel.
import type { Command } from 'commander';
import type { LoadResult, PolicyError } from '../../policy/load.js';
import { ExitCode } from '../exit-codes.js';
import { json, out } from './agent-connection.js';

/** `6 policies; rules per hook: exec 4, connect 2` */
export function summarizePolicies(result: LoadResult): string {
  const perHook = rulesPerHook(result);
  const n = result.policies.length;
  const rules = Object.entries(perHook).map(([hook, count]) => `${hook} ${count}`);
  return `${n} ${n === 1 ? 'policy' : 'policies'}; ${rules.length ? `rules per hook: ${rules.join(', ')}` : 'no rules'}`;
}

export function rulesPerHook(result: LoadResult): Record<string, number> {
  const perHook: Record<string, number> = {};
  for (const { policy } of result.policies) for (const rule of policy.spec.rules) perHook[rule.hook] = (perHook[rule.hook] ?? 0) + 1;
  return perHook;
}

/**
 * Loads and checks policies as apply would: every document, then the set.
 * An empty result (no policy file found) is an error too.
 */
export async function loadChecked(paths: readonly string[]): Promise<LoadResult> {
  const { loadPolicies } = await import('../../policy/load.js');
  const result = await loadPolicies(paths);
  if (result.policies.length === 0 && result.errors.length === 0) {
    const error: PolicyError = { file: paths.join(', '), line: 0, column: 0, path: [], message: 'no policies found (files must end in .yaml, .yml or .json)' };
    result.errors.push(error);
  }
  return result;
}

export async function printPolicyErrors(errors: readonly PolicyError[]): Promise<void> {
  const { formatPolicyError } = await import('../../policy/load.js');
  for (const e of errors) process.stderr.write(`${formatPolicyError(e)}\n`);
}

export function registerPolicyValidate(policy: Command): void {
  policy
    .command('validate')
    .summary('check policy files (no agent needed)')
    .description('check policy files and directories, alone and as one set (no agent needed); exit 0 when valid, 2 otherwise')
    .argument('<paths...>', 'policy files (.yaml, .yml, .json) and directories of them')
    .option('--json', 'print {valid, policies, rulesPerHook, errors} as JSON')
    .action(async (paths: string[], opts: { json?: boolean }) => {
      const result = await loadChecked(paths);
      const valid = result.errors.length === 0;
      if (opts.json) {
        out(json({ valid, policies: result.policies.length, rulesPerHook: rulesPerHook(result), errors: result.errors }));
      } else {
        await printPolicyErrors(result.errors);
        if (valid) out(`valid: ${summarizePolicies(result)}`);
        else process.stderr.write(`${result.errors.length} ${result.errors.length === 1 ? 'error' : 'errors'}\n`);
      }
      process.exitCode = valid ? ExitCode.ok : ExitCode.usage;
    });
}

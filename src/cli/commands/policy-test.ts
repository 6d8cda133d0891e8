// krsi policy test: check what policies decide for given events, from
// fixture files (policy-fixtures.ts), with a TAP report; for users' CI. No
// agent and no kernel.
import type { Command } from 'commander';
import { CliError, ExitCode } from '../exit-codes.js';
import { out } from './agent-connection.js';

interface TestOptions {
  verbose?: boolean;
}

export function registerPolicyTest(policy: Command): void {
  policy
    .command('test')
    .summary('check the decisions policies take for fixture events (no agent, no kernel)')
    .description(
      'evaluate fixture events against policies and compare each decision with the expected one (no agent, no kernel); ' +
        'prints a TAP report; exit 0 when every case passes, 1 when one fails, 2 when a fixture or policy is invalid',
    )
    .argument('<fixtures...>', 'fixture files (YAML): policies, optional list contents, and cases (event + expect)')
    .option('-v, --verbose', "print every case's rule trace, not only the failing ones'")
    .addHelpText(
      'after',
      '\nA fixture:\n' +
        '  policies: [../policies/]              # files, directories (relative to the fixture) or inline policy documents\n' +
        '  lists: {blocked: [203.0.113.0/24]}    # optional: what these lists hold during the tests\n' +
        '  cases:\n' +
        '    - name: nc from /tmp is denied\n' +
        '      event: {hook: exec, binary: /tmp/nc, uid: 1000, env: [HOME]}\n' +
        '      expect: {decision: deny, rule: no-exec-from-tmp/deny-scratch-dirs}\n' +
        '\nexpect: decision (allow|deny), and optionally rule ("policy/rule" or "default"), action, secureexec, killed,\n' +
        'wouldDeny ("policy/rule", "default" or null), audit ("policy/rule" or null). Event facts left out are unknown:\n' +
        'a selector on an unknown fact matches neither way. Quote 64-bit numbers (inode numbers, cgroup ids).',
    )
    .action(async (files: string[], opts: TestOptions) => {
      const { loadFixture, runFixture, traceLines } = await import('./policy-fixtures.js');
      const { formatPolicyError } = await import('../../policy/load.js');
      const fixtures = [];
      let invalid = 0;
      for (const file of files) {
        const { fixture, errors } = await loadFixture(file);
        for (const e of errors) process.stderr.write(`${formatPolicyError(e)}\n`);
        invalid += errors.length;
        if (fixture) fixtures.push(fixture);
      }
      if (invalid > 0) throw new CliError(`${invalid} ${invalid === 1 ? 'error' : 'errors'} in the fixtures; no case was run`, ExitCode.usage);

      const lines = ['TAP version 13'];
      let n = 0;
      let failed = 0;
      for (const fixture of fixtures) {
        lines.push(`# ${fixture.file}`);
        for (const result of runFixture(fixture)) {
          n++;
          const name = result.name.replace(/[\r\n#]/g, ' ');
          if (result.ok) lines.push(`ok ${n} - ${name}`);
          else {
            failed++;
            lines.push(`not ok ${n} - ${name}: ${result.problems.join('; ')}`);
          }
          if (!result.ok || opts.verbose) {
            const trace = traceLines(result.decision.trace);
            lines.push(...(trace.length ? trace : ['no rule on this hook']).map((l) => `  # ${l}`));
          }
        }
      }
      lines.push(`1..${n}`, `# pass ${n - failed}`, `# fail ${failed}`);
      out(lines.join('\n'));
      process.exitCode = failed === 0 ? ExitCode.ok : ExitCode.failure;
    });
}

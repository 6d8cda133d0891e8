// krsi policy: validate, test, apply, show and diff policies. Each subcommand
// is its own module; this one groups them.
import type { Command } from 'commander';
import { registerPolicyApply } from './policy-apply.js';
import { registerPolicyDiff } from './policy-diff.js';
import { registerPolicyShow } from './policy-show.js';
import { registerPolicyTest } from './policy-test.js';
import { registerPolicyValidate } from './policy-validate.js';

export function registerPolicy(program: Command): void {
  const policy = program
    .command('policy')
    .summary('validate, test, apply and inspect policies')
    .description(
      'Policies are YAML or JSON files (docs/policy.md). validate and test work on files alone; ' +
        'apply, show and diff talk to the running agent over its control socket.',
    );
  registerPolicyValidate(policy);
  registerPolicyTest(policy);
  registerPolicyApply(policy);
  registerPolicyShow(policy);
  registerPolicyDiff(policy);
}

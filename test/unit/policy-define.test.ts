// Policies as code: the same schema and set-level checks as policy files, and
// the canonical YAML that `krsi policy show` prints.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { definePolicy, definePolicySet, parsePolicyText, policyToYaml, PolicyValidationError, type PolicyInput } from '../../src/index.js';

const base = (name: string, spec: PolicyInput['spec']): PolicyInput => ({ apiVersion: 'krsi.dev/v1', kind: 'Policy', metadata: { name }, spec });

test('definePolicy returns the validated policy, defaults filled in', () => {
  const policy = definePolicy(
    base('tmp', {
      rules: [{ name: 'deny-tmp', hook: 'exec', match: { binary: { prefix: ['/tmp/'], inode: [{ dev: '8:1', ino: '18446744073709551615' }] } }, action: 'deny' }],
    }),
  );
  assert.equal(policy.spec.mode, 'enforce');
  assert.deepEqual(policy.spec.lists, []);
  assert.equal(policy.spec.rules[0]?.match.binary?.inode?.[0]?.ino, 18446744073709551615n);
});

test('definePolicy throws every issue, with policy, rule and path', () => {
  const input = base('web', {
    rules: [
      { name: 'ok', hook: 'exec', action: 'audit' },
      { name: 'bad', hook: 'connect', match: { uid: [0, -1], binary: { prefix: ['tmp/'] } }, action: 'secureexec' },
    ],
  });
  assert.throws(
    () => definePolicy(input),
    (e: unknown) => {
      assert.ok(e instanceof PolicyValidationError);
      assert.equal(
        e.message,
        [
          'policy web rule bad at spec.rules.1.match.binary.prefix.0: must be an absolute path',
          'policy web rule bad at spec.rules.1.match.uid.1: must be at least 0, got -1',
          'policy web rule bad at spec.rules.1.action: hook connect cannot secureexec; it can audit, allow, deny, kill',
        ].join('\n'),
      );
      assert.deepEqual(e.issues[1], { policy: 'web', rule: 'bad', path: ['spec', 'rules', 1, 'match', 'uid', 1], message: 'must be at least 0, got -1' });
      return true;
    },
  );
});

test('definePolicy refuses what is not a policy at all', () => {
  assert.throws(() => definePolicy(null as unknown as PolicyInput), /expected a mapping, got null/);
  assert.throws(() => definePolicy({} as PolicyInput), /at apiVersion: missing required key "apiVersion"/);
});

test('definePolicySet runs the checks across policies', () => {
  const a = definePolicy(base('a', { defaults: { exec: 'deny' }, lists: [{ name: 'hosts', type: 'address' }] }));
  const b = definePolicy(
    base('b', {
      defaults: { exec: 'allow' },
      rules: [{ name: 'r', hook: 'exec', match: { binary: { list: ['hosts', 'missing'] } }, action: 'deny' }],
    }),
  );
  assert.deepEqual(definePolicySet([a]), [a]);
  assert.throws(
    () => definePolicySet([a, b, a]),
    (e: unknown) => {
      assert.ok(e instanceof PolicyValidationError);
      assert.deepEqual(e.message.split('\n'), [
        'policy a at metadata.name: another policy is named a (policy 1 of the set)',
        'policy b rule r at spec.rules.0.match.binary.list.0: list hosts has type address; the binary selector takes lists of type path, inode, sha256',
        'policy b rule r at spec.rules.0.match.binary.list.1: list missing is not declared by any policy (spec.lists)',
        "policy b at spec.defaults.exec: the default for exec is allow here but deny in policy a (policy 1 of the set); policies must agree on a hook's default",
      ]);
      return true;
    },
  );
});

test('policyToYaml: schema key order, bigints as strings, and it parses back to the same policy', () => {
  const input: PolicyInput = {
    spec: {
      rules: [
        {
          action: 'deny',
          match: { uid: { not: true, in: [0] }, binary: { inode: [{ ino: 12, dev: '0:38' }], path: ['/usr/bin/nc'] }, cgroup: { id: ['9007199254740993'] } },
          hook: 'exec',
          name: 'r',
          rateLimit: { events: 5 },
        },
      ],
      lists: [{ type: 'path', name: 'l', entries: ['/a'] }],
      defaults: { connect: 'deny', exec: 'allow' },
    },
    metadata: { description: 'd', name: 'p' },
    kind: 'Policy',
    apiVersion: 'krsi.dev/v1',
  };
  const policy = definePolicy(input);
  const text = policyToYaml(policy);
  assert.equal(
    text,
    [
      'apiVersion: krsi.dev/v1',
      'kind: Policy',
      'metadata:',
      '  name: p',
      '  description: d',
      'spec:',
      '  mode: enforce',
      '  defaults:',
      '    exec: allow',
      '    connect: deny',
      '  lists:',
      '    - name: l',
      '      type: path',
      '      entries:',
      '        - /a',
      '  rules:',
      '    - name: r',
      '      hook: exec',
      '      match:',
      '        binary:',
      '          path:',
      '            - /usr/bin/nc',
      '          inode:',
      '            - dev: 0:38',
      '              ino: "12"',
      '        uid:',
      '          in:',
      '            - 0',
      '          not: true',
      '        cgroup:',
      '          id:',
      '            - "9007199254740993"',
      '      action: deny',
      '      rateLimit:',
      '        events: 5',
      '        perSeconds: 1',
      '  reactions: []',
      '',
    ].join('\n'),
  );
  const back = parsePolicyText(text, 'show.yaml');
  assert.deepEqual(back.errors, []);
  assert.deepEqual(back.policies[0]?.policy, policy);
  // The input form prints too, in the same order, without defaults.
  assert.match(policyToYaml(input), /^apiVersion: krsi.dev\/v1\nkind: Policy\nmetadata:\n {2}name: p\n/);
});

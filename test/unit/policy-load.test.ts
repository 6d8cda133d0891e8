// Policy files: every error has an exact place (file:line:column), names its
// policy and rule, and a load reports all of them without throwing.
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { formatPolicyError, loadPolicies, parsePolicyText, validatePolicySet, type LoadResult } from '../../src/policy/load.js';

/** Lines joined, so that a test's line numbers are the array's indexes + 1. */
const yaml = (...lines: string[]): string => `${lines.join('\n')}\n`;

const formatted = (r: LoadResult): string[] => r.errors.map(formatPolicyError);

const header = (name: string): string[] => ['apiVersion: krsi.dev/v1', 'kind: Policy', 'metadata:', `  name: ${name}`];

/** A valid policy document with one exec rule. */
const simple = (name: string, rule = 'r1'): string =>
  yaml(...header(name), 'spec:', '  rules:', `    - name: ${rule}`, '      hook: exec', '      action: audit');

const scratch = mkdtempSync(join(tmpdir(), 'krsi-policy-'));
after(() => rmSync(scratch, { recursive: true, force: true }));
let dirs = 0;
function tree(files: Record<string, string | Buffer>): string {
  const dir = join(scratch, `t${dirs++}`);
  for (const [name, content] of Object.entries(files)) {
    mkdirSync(join(dir, name, '..'), { recursive: true });
    writeFileSync(join(dir, name), content);
  }
  return dir;
}

describe('positions of document errors', () => {
  test('a YAML syntax error', () => {
    const text = yaml(...header('p'), 'spec:', '  rules: [', '    - name: r1', '  mode: enforce');
    const r = parsePolicyText(text, 'p.yaml');
    assert.equal(r.policies.length, 0);
    assert.ok(r.errors.length >= 1);
    assert.match(formatted(r)[0] as string, /^p\.yaml:7:5: YAML: /);
    for (const e of r.errors) assert.ok(e.line >= 1 && e.column >= 1);
  });

  test('a duplicate key is a YAML error at the second key', () => {
    const text = yaml(...header('p'), 'spec:', '  mode: enforce', '  mode: monitor');
    assert.deepEqual(formatted(parsePolicyText(text, 'p.yaml')), ['p.yaml:7:3: YAML: Map keys must be unique']);
  });

  test('a wrong type deep in a rule points at the value, with the policy and rule', () => {
    const text = yaml(
      ...header('web'),
      'spec:',
      '  rules:',
      '    - name: deny-shells',
      '      hook: exec',
      '      match:',
      '        uid: [0, root]',
      '      action: deny',
    );
    const r = parsePolicyText(text, 'p.yaml');
    assert.deepEqual(formatted(r), ['p.yaml:10:18: policy web rule deny-shells: expected a number, got "root"']);
    assert.deepEqual(r.errors[0]?.path, ['spec', 'rules', 0, 'match', 'uid', 1]);
  });

  test('an unknown key points at the key and suggests the right one', () => {
    const text = yaml(...header('p'), 'spec:', '  rules:', '    - name: r1', '      hook: exec', '      acton: deny');
    assert.deepEqual(formatted(parsePolicyText(text, 'p.yaml')), [
      'p.yaml:7:7: policy p rule r1: missing required key "action" (one of audit, allow, deny, kill, secureexec)',
      'p.yaml:9:7: policy p rule r1: unknown key "acton" (did you mean "action"?)',
    ]);
  });

  test('an unknown key with no close match lists the keys', () => {
    const text = yaml(...header('p'), 'spec:', '  colour: blue');
    assert.deepEqual(formatted(parsePolicyText(text, 'p.yaml')), [
      'p.yaml:6:3: policy p: unknown key "colour"; expected one of mode, defaults, lists, rules, reactions',
    ]);
  });

  test('a selector the hook does not have, and an action it cannot carry out', () => {
    const text = yaml(
      ...header('p'),
      'spec:',
      '  rules:',
      '    - name: r1',
      '      hook: connect',
      '      match:',
      '        file: {path: [/etc/shadow]}',
      '      action: secureexec',
    );
    assert.deepEqual(formatted(parsePolicyText(text, 'p.yaml')), [
      'p.yaml:10:15: policy p rule r1: hook connect has no "file" selector; it has binary, parent, ancestor, uid, gid, cgroup, address, port',
      'p.yaml:11:15: policy p rule r1: hook connect cannot secureexec; it can audit, allow, deny, kill',
    ]);
  });

  test('hook checks still run when another field of the rule is wrong', () => {
    const text = yaml(
      ...header('p'),
      'spec:',
      '  rules:',
      '    - name: r1',
      '      hook: mount',
      '      match:',
      '        uid: [root]',
      '        env: [LD_PRELOAD]',
      '      action: deny',
    );
    assert.deepEqual(formatted(parsePolicyText(text, 'p.yaml')), [
      'p.yaml:10:15: policy p rule r1: expected a number, got "root"',
      'p.yaml:11:14: policy p rule r1: hook mount has no "env" selector; it has binary, parent, ancestor, uid, gid, cgroup, fstype, source, device, bus, removable',
    ]);
  });

  test('duplicate rule names point at the second name', () => {
    const text = yaml(
      ...header('p'),
      'spec:',
      '  rules:',
      '    - {name: r1, hook: exec, action: audit}',
      '    - {name: r2, hook: exec, action: audit}',
      '    - {name: r1, hook: connect, action: audit}',
    );
    assert.deepEqual(formatted(parsePolicyText(text, 'p.yaml')), ['p.yaml:9:14: policy p rule r1: rule r1 is already defined (spec.rules.0)']);
  });

  test('the rule is named from the document even when its name is invalid', () => {
    const text = yaml(...header('p'), 'spec:', '  rules:', '    - name: Bad_Name', '      hook: exec', '      action: nope');
    assert.deepEqual(formatted(parsePolicyText(text, 'p.yaml')), [
      'p.yaml:7:13: policy p rule Bad_Name: "Bad_Name" is not valid: expected lower-case letters, digits and dashes, at most 63, starting and ending with a letter or digit',
      'p.yaml:9:15: policy p rule Bad_Name: expected one of audit, allow, deny, kill, secureexec; got "nope"',
    ]);
  });

  test('a missing key points at the mapping that lacks it; an empty value at its key', () => {
    const text = yaml('apiVersion: krsi.dev/v1', 'kind: Policy', 'metadata:', 'spec:', '  rules:', '    - name: r1', '      hook: exec', '      match:', '        env:', '      action: audit');
    assert.deepEqual(formatted(parsePolicyText(text, 'p.yaml')), [
      'p.yaml:3:1: expected a mapping, got null',
      'p.yaml:9:9: rule r1: expected a list or a mapping, got null',
    ]);
  });

  test('wrong apiVersion and kind', () => {
    const r = parsePolicyText(yaml('apiVersion: krsi.dev/v2', 'kind: Policy', 'metadata: {name: p}', 'spec: {}'), 'p.yaml');
    assert.deepEqual(formatted(r), ['p.yaml:1:13: policy p: expected "krsi.dev/v1", got "krsi.dev/v2"']);
  });

  test('unresolved tags are errors', () => {
    const r = parsePolicyText(yaml(...header('p'), 'spec: !include other.yaml'), 'p.yaml');
    assert.ok(r.errors.some((e) => e.line === 5 && /Unresolved tag/.test(e.message)), formatted(r).join('\n'));
  });

  test('names with control characters are printed escaped', () => {
    const r = parsePolicyText(yaml(...header('"a\\nb"'), 'spec: {}'), 'p.yaml');
    assert.deepEqual(formatted(r), ['p.yaml:4:9: policy a\\u000ab: "a\\u000ab" is not valid: expected lower-case letters, digits and dashes, at most 63, starting and ending with a letter or digit']);
  });
});

describe('inputs that are not policies at all', () => {
  test('a second document in a JSON file', () => {
    const one = '{"apiVersion": "krsi.dev/v1", "kind": "Policy", "metadata": {"name": "a"}, "spec": {}}';
    assert.deepEqual(formatted(parsePolicyText(`${one}\n---\n${one}\n`, 'p.json')).slice(0, 1), ['p.json:3:1: a JSON file holds one policy or a list of policies']);
  });

  test('nesting deeper than 64 levels is refused before parsing, with its place', () => {
    assert.deepEqual(formatted(parsePolicyText(`a:\n  b: ${'['.repeat(10000)}`, 'p.yaml')), ['p.yaml:2:68: nested more than 64 levels deep']);
    const block = Array.from({ length: 100 }, (_, i) => `${' '.repeat(i)}k${i}:`).join('\n');
    assert.deepEqual(formatted(parsePolicyText(block, 'p.yaml')), ['p.yaml:65:65: nested more than 64 levels deep']);
    // However the nesting starts: anchors, tags, document markers, keys, compact entries, after text.
    const deep = '['.repeat(20000);
    for (const text of [
      `a: &x ${deep}`,
      `a: !!seq ${deep}`,
      `--- ${deep}`,
      `? ${deep}`,
      `"k": ${deep}`,
      `[a]: ${deep}`,
      `[${'&a !!seq ['.repeat(20000)}`,
      `a: |\n  text\nb: ${deep}`,
      `a:\r${deep}`,
      `${'- '.repeat(20000)}x`,
      Array.from({ length: 3000 }, (_, i) => `${' '.repeat(2 * i)}- a:`).join('\n'),
    ]) {
      const r = parsePolicyText(text, 'p.yaml');
      assert.deepEqual(r.errors.map((e) => e.message), ['nested more than 64 levels deep'], JSON.stringify(text.slice(0, 40)));
    }
    // Brackets in plain and quoted text, and in block scalars, are text.
    const text = yaml(...header('p'), `  description: a${'['.repeat(100)}`, 'spec:', '  rules:', '    - name: r', '      hook: exec', '      action: audit', `      description: "${'{'.repeat(100)}"`);
    assert.deepEqual(formatted(parsePolicyText(text, 'p.yaml')), []);
  });

  test('aliases: a node that contains itself, and a chain that nests too deep', () => {
    assert.deepEqual(formatted(parsePolicyText('spec: &s {rules: *s}\n', 'p.yaml')), ['p.yaml:1:18: an alias refers to a node that contains it']);
    const chain = ['a0: &a0 [1]', ...Array.from({ length: 80 }, (_, i) => `a${i + 1}: &a${i + 1} [*a${i}]`)].join('\n');
    const r = parsePolicyText(chain, 'p.yaml');
    assert.equal(r.errors.length, 1);
    assert.match(formatted(r)[0] as string, /^p\.yaml:\d+:\d+: (nested more than 64 levels deep|YAML: Excessive alias count)/);
  });

  test('a collection as a mapping key', () => {
    assert.deepEqual(formatted(parsePolicyText('apiVersion: krsi.dev/v1\n? [kind]\n: Policy\n', 'p.yaml')), [
      'p.yaml:2:3: YAML: a key must be a plain value, not a list or a mapping',
    ]);
  });

  test('at most 200 errors per file, then how many more there were', () => {
    const rules = Array.from({ length: 300 }, (_, i) => `    - {name: r${i}, hook: exec, action: nope}`);
    const r = parsePolicyText(yaml(...header('p'), 'spec:', '  rules:', ...rules), 'p.yaml');
    assert.equal(r.errors.length, 201);
    assert.equal(formatted(r)[200], 'p.yaml:207:40: 100 more errors in this file not shown');
  });
});

describe('documents and files', () => {
  test('several YAML documents: each one a policy, with its own line', () => {
    const text = `${simple('a')}---\n${simple('b')}---\n# only a comment\n---\n${simple('c', 'Bad')}`;
    const r = parsePolicyText(text, 'multi.yaml');
    assert.deepEqual(
      r.policies.map((p) => [p.policy.metadata.name, p.source]),
      [
        ['a', { file: 'multi.yaml', line: 1, document: 1 }],
        ['b', { file: 'multi.yaml', line: 11, document: 2 }],
      ],
    );
    assert.deepEqual(formatted(r), [
      'multi.yaml:29:13: policy c rule Bad: "Bad" is not valid: expected lower-case letters, digits and dashes, at most 63, starting and ending with a letter or digit',
    ]);
  });

  test('JSON: one policy, or a list of them', () => {
    const one = JSON.stringify({ apiVersion: 'krsi.dev/v1', kind: 'Policy', metadata: { name: 'j' }, spec: {} }, null, 2);
    assert.deepEqual(parsePolicyText(one, 'p.json').errors, []);
    const list = [
      '[',
      '  {"apiVersion": "krsi.dev/v1", "kind": "Policy", "metadata": {"name": "a"}, "spec": {}},',
      '  {"apiVersion": "krsi.dev/v1", "kind": "Policy", "metadata": {"name": "b"},',
      '   "spec": {"rules": [{"name": "r", "hook": "exec", "action": "deny", "match": {"uid": ["root"]}}]}}',
      ']',
    ].join('\n');
    const r = parsePolicyText(list, 'p.json');
    assert.deepEqual(
      r.policies.map((p) => [p.policy.metadata.name, p.source.line, p.source.document]),
      [['a', 2, 1]],
    );
    assert.deepEqual(formatted(r), ['p.json:4:89: policy b rule r: expected a number, got "root"']);
  });

  test('JSON with tabs, and a JSON syntax error', () => {
    assert.deepEqual(parsePolicyText('{\n\t"apiVersion": "krsi.dev/v1",\n\t"kind": "Policy",\n\t"metadata": {"name": "t"},\n\t"spec": {}\n}\n', 'p.json').errors, []);
    const r = parsePolicyText('{\n  "apiVersion": "krsi.dev/v1",\n  "kind": "Policy"\n  "metadata": {}\n}\n', 'p.json');
    assert.ok(r.errors.length > 0 && r.errors.every((e) => e.line >= 3), formatted(r).join('\n'));
  });

  test('a directory: policy files recursively, in path order; hidden and other files skipped', async () => {
    const dir = tree({
      'b.yaml': simple('b'),
      'a/z.yml': simple('az'),
      'a/m.json': JSON.stringify({ apiVersion: 'krsi.dev/v1', kind: 'Policy', metadata: { name: 'am' }, spec: {} }),
      'c.yaml': `${simple('c1')}---\n${simple('c2')}`,
      '.hidden.yaml': 'not: a policy',
      '.git/x.yaml': 'not: a policy',
      'README.md': '# not a policy',
      'notes.txt': 'nor this',
    });
    symlinkSync(join(dir, 'b.yaml'), join(dir, 'd-link.yaml')); // the same file twice: loaded once
    const r = await loadPolicies([dir]);
    assert.deepEqual(formatted(r), []);
    assert.deepEqual(
      r.policies.map((p) => p.policy.metadata.name),
      ['am', 'az', 'b', 'c1', 'c2'],
    );
    assert.equal(r.policies[0]?.source.file, join(dir, 'a/m.json'));
  });

  test('missing paths, broken links and other files are errors, not exceptions', async () => {
    const dir = tree({ 'ok.yaml': simple('ok'), 'policy.txt': simple('txt'), 'bad.yaml': Buffer.from([0x61, 0x3a, 0x20, 0x0a, 0x62, 0x3a, 0x20, 0x78, 0xff, 0x0a]) });
    symlinkSync(join(dir, 'nowhere.yaml'), join(dir, 'broken.yaml'));
    const r = await loadPolicies([join(dir, 'missing.yaml'), dir, join(dir, 'policy.txt')]);
    assert.deepEqual(formatted(r), [
      `${join(dir, 'missing.yaml')}: no such file or directory`,
      `${join(dir, 'bad.yaml')}:2:5: invalid UTF-8 at byte 8`,
      `${join(dir, 'broken.yaml')}: no such file or directory`,
      `${join(dir, 'policy.txt')}: not a policy file: the name must end in .yaml, .yml, .json`,
    ]);
    assert.deepEqual(
      r.policies.map((p) => p.policy.metadata.name),
      ['ok'],
    );
  });

  test('an unreadable file is an error', { skip: process.getuid?.() === 0 ? 'root reads every file' : false }, async () => {
    const dir = tree({ 'secret.yaml': simple('s') });
    chmodSync(join(dir, 'secret.yaml'), 0);
    const r = await loadPolicies([dir]);
    assert.deepEqual(formatted(r), [`${join(dir, 'secret.yaml')}: permission denied`]);
  });
});

describe('checks across policies', () => {
  const withLists = (name: string, lists: string[], rules: string[]): string =>
    yaml(...header(name), 'spec:', '  lists:', ...lists, ...(rules.length ? ['  rules:', ...rules] : []));

  test('duplicate policy names across two files', async () => {
    const dir = tree({ 'one.yaml': simple('web'), 'two.yaml': `${simple('other')}---\n${simple('web')}` });
    const r = await loadPolicies([dir]);
    assert.deepEqual(formatted(r), [`${join(dir, 'two.yaml')}:14:9: policy web: another policy is named web (${join(dir, 'one.yaml')}:1)`]);
  });

  test('a list no policy declares, and a list of the wrong type', async () => {
    const dir = tree({
      'lists.yaml': withLists('lists', ['    - {name: bad-ips, type: path}'], []),
      'net.yaml': withLists(
        'net',
        ['    - {name: good-ips, type: address}'],
        [
          '    - name: deny-bad',
          '      hook: connect',
          '      match:',
          '        address: {list: [good-ips, bad-ips]}',
          '        port: {in: [22], list: [ssh-ports]}',
          '      action: deny',
        ],
      ),
    });
    const r = await loadPolicies([dir]);
    const net = join(dir, 'net.yaml');
    assert.deepEqual(formatted(r), [
      `${net}:12:36: policy net rule deny-bad: list bad-ips has type path; the address selector takes lists of type address`,
      `${net}:13:33: policy net rule deny-bad: list ssh-ports is not declared by any policy (spec.lists)`,
    ]);
  });

  test('a list declared twice with different types', () => {
    const a = parsePolicyText(withLists('a', ['    - {name: hosts, type: address}'], []), 'a.yaml');
    const b = parsePolicyText(withLists('b', ['    - {name: other, type: path}', '    - {name: hosts, type: path}'], []), 'b.yaml');
    assert.deepEqual([...a.errors, ...b.errors], []);
    assert.deepEqual(validatePolicySet([...a.policies, ...b.policies]).map(formatPolicyError), [
      'b.yaml:8:27: policy b: list hosts is declared with type address by policy a (a.yaml:1); a list has one type',
    ]);
  });

  test('each selector takes only lists of its types', () => {
    const lists = ['    - {name: ids, type: uid}', '    - {name: files, type: path}', '    - {name: hashes, type: sha256}'];
    const rules = [
      '    - name: r1',
      '      hook: exec',
      '      match:',
      '        binary: {list: [files, hashes, ids]}',
      '        gid: {list: [ids]}',
      '        uid: {list: [ids]}',
      '      action: deny',
    ];
    const r = parsePolicyText(withLists('p', lists, rules), 'p.yaml');
    assert.deepEqual(r.errors, []);
    assert.deepEqual(validatePolicySet(r.policies).map(formatPolicyError), [
      'p.yaml:14:40: policy p rule r1: list ids has type uid; the binary selector takes lists of type path, inode, sha256',
      'p.yaml:15:22: policy p rule r1: list ids has type uid; the gid selector takes lists of type gid',
    ]);
  });

  test('conflicting defaults', async () => {
    const dir = tree({
      'a.yaml': yaml(...header('a'), 'spec:', '  defaults:', '    exec: deny', '    connect: allow'),
      'b.yaml': yaml(...header('b'), 'spec:', '  defaults: {exec: allow, connect: allow, mount: deny}'),
    });
    const r = await loadPolicies([dir]);
    assert.deepEqual(formatted(r), [
      `${join(dir, 'b.yaml')}:6:20: policy b: the default for exec is allow here but deny in policy a (${join(dir, 'a.yaml')}:1); policies must agree on a hook's default`,
    ]);
  });

  test('at most 64 rules per hook, across policies', () => {
    const rules = (n: number, prefix: string): string[] =>
      Array.from({ length: n }, (_, i) => `    - {name: ${prefix}${i}, hook: exec, action: audit}`);
    const a = parsePolicyText(yaml(...header('a'), 'spec:', '  rules:', ...rules(40, 'a')), 'a.yaml');
    const b = parsePolicyText(yaml(...header('b'), 'spec:', '  rules:', ...rules(30, 'b'), '    - {name: c, hook: connect, action: audit}'), 'b.yaml');
    assert.deepEqual(validatePolicySet([...a.policies, ...b.policies]).map(formatPolicyError), [
      'b.yaml:31:7: policy b rule b24: hook exec has 70 rules across all policies; at most 64',
    ]);
    assert.deepEqual(validatePolicySet([...a.policies, ...b.policies.slice(0, 0)]), []);
  });

  test('a load with many errors reports them all, sorted by file and place', async () => {
    const dir = tree({
      'a.yaml': yaml(...header('a'), 'spec:', '  rules:', '    - {name: r1, hook: exec, action: audit, match: {uid: [x]}}', '    - {name: r2, hook: exec, action: kill, match: {fstype: [vfat]}}'),
      'b.yaml': 'a: [\n',
      'c.yaml': simple('d'),
      'd.yaml': simple('d'),
    });
    const r = await loadPolicies([dir]);
    assert.deepEqual(
      r.errors.map((e) => `${e.file.slice(dir.length + 1)}:${e.line}`),
      ['a.yaml:7', 'a.yaml:8', 'b.yaml:2', 'd.yaml:4'],
    );
  });
});

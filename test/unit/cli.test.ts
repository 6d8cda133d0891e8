// The command line: usage errors exit 2 and change nothing; help exits 0.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { main } from '../../src/cli/main.js';
import { ExitCode } from '../../src/cli/exit-codes.js';

const quiet = async (argv: string[]): Promise<number> => {
  const write = process.stderr.write.bind(process.stderr);
  const out = process.stdout.write.bind(process.stdout);
  process.stderr.write = (() => true) as typeof process.stderr.write;
  process.stdout.write = (() => true) as typeof process.stdout.write;
  try {
    return await main(argv);
  } finally {
    process.stderr.write = write;
    process.stdout.write = out;
  }
};

test('usage errors exit 2 before anything touches the kernel', async () => {
  assert.equal(await quiet(['run', '--args-max', 'lots']), ExitCode.usage);
  assert.equal(await quiet(['run', '--args-max', '5000']), ExitCode.usage);
  assert.equal(await quiet(['run', '--format', 'xml']), ExitCode.usage);
  assert.equal(await quiet(['no-such-command']), ExitCode.usage);
  assert.equal(await quiet(['vm', '--kernel', '4.19', '--', 'true']), ExitCode.usage);
});

test('--help exits 0', async () => {
  assert.equal(await quiet(['--help']), ExitCode.ok);
  assert.equal(await quiet(['run', '--help']), ExitCode.ok);
});

test('an invalid or missing policy is a clear error, and nothing is loaded', async () => {
  const errors: string[] = [];
  const write = process.stderr.write.bind(process.stderr);
  process.stderr.write = ((s: string) => (errors.push(String(s)), true)) as typeof process.stderr.write;
  try {
    const code = await main(['run', '--no-control', '--policy', '/nonexistent/krsi-test.yaml']);
    assert.equal(code, ExitCode.usage);
  } finally {
    process.stderr.write = write;
  }
  assert.match(errors.join(''), /invalid policy:\n.*\/nonexistent\/krsi-test\.yaml/);
});

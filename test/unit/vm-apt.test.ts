// The private apt configuration: the host's archive and security URIs, with
// the suites of the other kernels added.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatDeb822, parseDeb822Sources, parseOneLineSources, privateSources } from '../../src/vm/apt.js';

const hostSources = `Types: deb
# a comment
URIs: http://archive.example/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://archive.example/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://elsewhere.example/node
Suites: nodistro
Components: main
Enabled: no
`;

test('deb822 and one-line sources parse to their URIs, suites and keyrings', () => {
  const parsed = parseDeb822Sources(hostSources);
  assert.equal(parsed.length, 2, 'the disabled stanza is skipped');
  assert.deepEqual(parsed[0], {
    uri: 'http://archive.example/debian',
    suites: ['bookworm', 'bookworm-updates'],
    components: ['main'],
    signedBy: '/usr/share/keyrings/debian-archive-keyring.gpg',
  });
  assert.deepEqual(parseOneLineSources('deb [signed-by=/k.gpg] http://a.example/debian bookworm main contrib\n# deb http://x y z\ndeb-src http://s t u\n'), [
    { uri: 'http://a.example/debian', suites: ['bookworm'], components: ['main', 'contrib'], signedBy: '/k.gpg' },
  ]);
});

test('the private sources add bullseye and sid to the archive, bullseye-security to the security URI', () => {
  const sources = privateSources(parseDeb822Sources(hostSources));
  assert.deepEqual(
    sources.map((s) => [s.uri, s.suites]),
    [
      ['http://archive.example/debian', ['bookworm', 'bookworm-updates', 'bullseye', 'sid']],
      ['http://archive.example/debian-security', ['bookworm-security', 'bullseye-security']],
    ],
  );
  assert.match(formatDeb822(sources), /^Types: deb\nURIs: http:\/\/archive\.example\/debian\nSuites: bookworm bookworm-updates bullseye sid\nComponents: main\nSigned-By: /);
  assert.deepEqual(privateSources([]), []);
});

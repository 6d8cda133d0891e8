// A private apt configuration for fetching kernels of other Debian releases
// (bullseye's 5.10, sid's newest) next to the host's own: its own source
// list, package lists and cache under the krsi cache, so the system's apt
// state is never touched. The archive URIs and keyrings are the ones the
// host's apt already uses; only the suites differ.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CliError, ExitCode } from '../cli/exit-codes.js';

export interface AptSource {
  readonly uri: string;
  readonly suites: readonly string[];
  readonly components: readonly string[];
  readonly signedBy?: string;
}

/** The `Types: deb` sources of a deb822 .sources file. */
export function parseDeb822Sources(text: string): AptSource[] {
  const out: AptSource[] = [];
  for (const stanza of text.split(/\n\s*\n/)) {
    const fields = new Map<string, string>();
    let last: string | undefined;
    for (const line of stanza.split('\n')) {
      if (line.startsWith('#') || line.trim() === '') continue;
      if (/^\s/.test(line) && last !== undefined) {
        fields.set(last, `${fields.get(last) ?? ''} ${line.trim()}`);
        continue;
      }
      const m = /^([\w-]+):\s*(.*)$/.exec(line);
      if (m?.[1] === undefined) continue;
      last = m[1].toLowerCase();
      fields.set(last, m[2] ?? '');
    }
    if (fields.get('enabled')?.trim() === 'no') continue;
    if (!(fields.get('types') ?? '').split(/\s+/).includes('deb')) continue;
    const words = (k: string): string[] => (fields.get(k) ?? '').split(/\s+/).filter((w) => w !== '');
    const signedBy = fields.get('signed-by')?.trim();
    for (const uri of words('uris')) {
      out.push({ uri, suites: words('suites'), components: words('components'), ...(signedBy ? { signedBy } : {}) });
    }
  }
  return out;
}

/** The `deb` lines of a one-line-style sources.list. */
export function parseOneLineSources(text: string): AptSource[] {
  const out: AptSource[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*/, '').trim();
    const m = /^deb\s+(?:\[([^\]]*)\]\s+)?(\S+)\s+(\S+)\s*(.*)$/.exec(line);
    if (m?.[2] === undefined || m[3] === undefined) continue;
    const signedBy = /(?:^|\s)signed-by=(\S+)/.exec(m[1] ?? '')?.[1];
    out.push({ uri: m[2], suites: [m[3]], components: (m[4] ?? '').split(/\s+/).filter((w) => w !== ''), ...(signedBy ? { signedBy } : {}) });
  }
  return out;
}

/** Every enabled `deb` source of the host's apt configuration. */
export function hostAptSources(etc = '/etc/apt'): AptSource[] {
  const out: AptSource[] = [];
  const read = (p: string): string => {
    try {
      return readFileSync(p, 'utf8');
    } catch {
      return '';
    }
  };
  out.push(...parseOneLineSources(read(join(etc, 'sources.list'))));
  let parts: string[] = [];
  try {
    parts = readdirSync(join(etc, 'sources.list.d')).sort();
  } catch {
    // none
  }
  for (const f of parts) {
    if (f.endsWith('.sources')) out.push(...parseDeb822Sources(read(join(etc, 'sources.list.d', f))));
    else if (f.endsWith('.list')) out.push(...parseOneLineSources(read(join(etc, 'sources.list.d', f))));
  }
  return out;
}

/** Debian suites beyond the host's that serve the kernels the VM boots. */
export const EXTRA_SUITES = ['bullseye', 'bullseye-security', 'sid'] as const;

/**
 * The sources of the private configuration: the host's Debian archive and
 * security URIs (recognised by a suite named like a release, and one ending
 * in -security), each with its own suites plus the extra ones it serves.
 */
export function privateSources(host: readonly AptSource[], extra: readonly string[] = EXTRA_SUITES): AptSource[] {
  const isSecurity = (s: string): boolean => s.endsWith('-security') || s.endsWith('/updates');
  const archive = host.find((s) => s.components.includes('main') && s.suites.some((x) => !isSecurity(x) && /^[a-z]+(-updates)?$/.test(x)));
  const security = host.find((s) => s.components.includes('main') && s.suites.some(isSecurity));
  const out: AptSource[] = [];
  const add = (base: AptSource | undefined, wanted: string[]): void => {
    if (base === undefined) return;
    const suites = [...new Set([...base.suites, ...wanted])];
    out.push({ uri: base.uri, suites, components: ['main'], ...(base.signedBy ? { signedBy: base.signedBy } : {}) });
  };
  add(archive, extra.filter((s) => !isSecurity(s)));
  add(security, extra.filter(isSecurity));
  return out;
}

export function formatDeb822(sources: readonly AptSource[]): string {
  return sources
    .map((s) =>
      [
        'Types: deb',
        `URIs: ${s.uri}`,
        `Suites: ${s.suites.join(' ')}`,
        `Components: ${s.components.join(' ')}`,
        ...(s.signedBy ? [`Signed-By: ${s.signedBy}`] : []),
      ].join('\n'),
    )
    .join('\n\n')
    .concat('\n');
}

export interface PrivateApt {
  readonly dir: string;
  /** The file to point APT_CONFIG at. */
  readonly config: string;
  /** Whether the package lists were ever fetched. */
  readonly hasLists: boolean;
}

/**
 * Writes (or refreshes) the private configuration under `cacheRoot`/apt.
 * `APT_CONFIG=<config> apt-get …` then sees the host's suites and the extra
 * ones, with lists and caches of its own.
 */
export async function preparePrivateApt(cacheRoot: string): Promise<PrivateApt> {
  const dir = join(cacheRoot, 'apt');
  const sources = privateSources(hostAptSources());
  if (sources.length === 0) {
    throw new CliError(
      'the host apt configuration has no Debian archive source (a deb entry with the main component) to fetch kernels from',
      ExitCode.missingDependency,
    );
  }
  for (const d of ['lists/partial', 'cache/archives/partial', 'sources.list.d']) await mkdir(join(dir, d), { recursive: true });
  const config = join(dir, 'apt.conf');
  const text =
    `Dir::State::Lists "${join(dir, 'lists')}";\n` +
    `Dir::Cache "${join(dir, 'cache')}";\n` +
    'Dir::Etc::SourceList "/dev/null";\n' +
    `Dir::Etc::SourceParts "${join(dir, 'sources.list.d')}";\n`;
  await writeIfChanged(config, text);
  await writeIfChanged(join(dir, 'sources.list.d', 'krsi-kernels.sources'), formatDeb822(sources));
  const hasLists = existsSync(join(dir, 'lists')) && readdirSync(join(dir, 'lists')).some((f) => f.endsWith('_Packages'));
  return { dir, config, hasLists };
}

async function writeIfChanged(path: string, text: string): Promise<void> {
  if (existsSync(path) && readFileSync(path, 'utf8') === text) return;
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, text);
  await rename(tmp, path);
}

// krsi list: the agent's dynamic lists (spec.lists of the policies), shown
// and changed at run time, without re-applying any policy.
import { resolve } from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import type { ListChange, ListView } from '../../agent/control-api.js';
import { ExitCode } from '../exit-codes.js';
import { addSocketOption, json, out, withAgent, type SocketOptions } from './agent-connection.js';

const UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };
const MAX_TTL_SECONDS = 10 * 365 * 86400;

/** `3600`, `90s`, `10m`, `1h30m`, `7d` → seconds. */
export function parseTtl(text: string): number {
  let seconds: number;
  if (/^\d+$/.test(text)) seconds = Number(text);
  else if (/^(\d+[smhd])+$/.test(text)) {
    seconds = 0;
    for (const m of text.matchAll(/(\d+)([smhd])/g)) seconds += Number(m[1]) * (UNITS[m[2] as string] ?? 0);
  } else throw new InvalidArgumentError('a duration: seconds (3600) or with units s, m, h, d (90s, 10m, 1h30m, 7d)');
  if (seconds < 1 || seconds > MAX_TTL_SECONDS) throw new InvalidArgumentError(`from 1 second to ${MAX_TTL_SECONDS / 86400} days`);
  return seconds;
}

/** Entries the agent resolves (paths for inode, sha256 and cgroup lists) are made absolute here: the agent has its own working directory. */
function absoluteEntries(entries: readonly string[]): string[] {
  return entries.map((e) => (e.startsWith('./') || e.startsWith('../') || e === '.' ? resolve(e) : e));
}

export function renderLists(lists: readonly ListView[]): string {
  if (lists.length === 0) return 'no lists (no policy in force declares one)';
  const lines: string[] = [];
  for (const l of lists) {
    lines.push(`${l.name} (${l.type}, id ${l.id}): ${l.entries.length} ${l.entries.length === 1 ? 'entry' : 'entries'}`);
    for (const e of l.entries) lines.push(`  ${e.entry}${e.expires ? `  (expires ${e.expires})` : ''}`);
  }
  return lines.join('\n');
}

function renderChange(verb: 'added' | 'removed', c: ListChange, ttl?: number): string {
  const changed = verb === 'added' ? c.added : c.removed;
  const parts = [`${verb} ${changed.length} ${changed.length === 1 ? 'entry' : 'entries'} ${verb === 'added' ? 'to' : 'from'} ${c.list}`];
  if (c.unchanged.length) parts.push(`${c.unchanged.length} ${verb === 'added' ? 'already there' : 'not there'}: ${c.unchanged.join(', ')}`);
  if (ttl !== undefined && changed.length) parts.push(`expiring in ${ttl} s`);
  return parts.join('; ');
}

export function registerList(program: Command): void {
  const list = program
    .command('list')
    .summary("show and change the running agent's dynamic lists")
    .description(
      'Dynamic lists are declared by policies (spec.lists) and referenced from their selectors; their entries change ' +
        'at run time, taking effect at once, without re-applying a policy.',
    );

  addSocketOption(
    list
      .command('show')
      .description('print the lists and their entries (with their expiry)')
      .argument('[name]', 'only this list')
      .option('--json', 'print the lists as JSON'),
  ).action(async (name: string | undefined, opts: SocketOptions & { json?: boolean }) => {
    const lists = await withAgent(opts.socket, (client) => client.lists(name));
    out(opts.json ? json(lists) : renderLists(lists));
    process.exitCode = ExitCode.ok;
  });

  addSocketOption(
    list
      .command('add')
      .description('add entries to a list: in their canonical text form (an address or network, a port, a uid...), or paths for inode, sha256 and cgroup lists')
      .argument('<name>', 'the list')
      .argument('<entries...>', 'the entries')
      .option('--ttl <duration>', 'remove them again after this long: seconds, or 90s, 10m, 1h30m, 7d', parseTtl)
      .option('--json', "print the agent's answer as JSON"),
  ).action(async (name: string, entries: string[], opts: SocketOptions & { ttl?: number; json?: boolean }) => {
    const change = await withAgent(opts.socket, (client) => client.listAdd(name, absoluteEntries(entries), opts.ttl));
    out(opts.json ? json(change) : renderChange('added', change, opts.ttl));
    process.exitCode = ExitCode.ok;
  });

  addSocketOption(
    list
      .command('remove')
      .description('remove entries from a list')
      .argument('<name>', 'the list')
      .argument('<entries...>', 'the entries, as `krsi list show` prints them (or as they were added)')
      .option('--json', "print the agent's answer as JSON"),
  ).action(async (name: string, entries: string[], opts: SocketOptions & { json?: boolean }) => {
    const change = await withAgent(opts.socket, (client) => client.listRemove(name, absoluteEntries(entries)));
    out(opts.json ? json(change) : renderChange('removed', change));
    process.exitCode = ExitCode.ok;
  });
}

// krsi explain: the decision the running agent's policies (and lists) take
// for an event, and why: the deciding rule or the default, then every rule of
// the hook with each selector's outcome.
import { readFileSync } from 'node:fs';
import { InvalidArgumentError, type Command } from 'commander';
import type { Decision, RuleRef } from '../../policy/evaluate.js';
import { CliError, ExitCode } from '../exit-codes.js';
import { addSocketOption, json, out, withAgent, type SocketOptions } from './agent-connection.js';

interface ExplainOptions extends SocketOptions {
  event?: string;
  hook?: string;
  binary?: string;
  binaryDev?: string;
  binaryIno?: string;
  sha256?: string;
  parent?: string;
  ancestor: string[];
  uid?: number;
  gid?: number;
  cgroup: string[];
  env: string[];
  file?: string;
  fstype?: string;
  source?: string;
  device?: string;
  module?: string;
  address?: string;
  port?: number;
  json?: boolean;
}

/** Event facts in their wire form (EventFactsSchema parses them), and what the event did not say. */
export interface MappedEvent {
  facts: Record<string, unknown>;
  notes: string[];
  /** What the agent decided when the event happened, as the event says. */
  recorded?: string;
}

const FACT_FIELDS = ['file', 'fstype', 'source', 'device', 'module', 'address', 'port'] as const;

function record(value: unknown): Record<string, unknown> | undefined {
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
}

/**
 * The facts an event of `krsi run`'s stream carries. An exec event gives the
 * executed file (path, device, inode), the uid, gid and the task's cgroup; it
 * does not carry the environment, the parent or the ancestors, nor the
 * cgroup's ancestors. Other hooks' events give the process's ids and the
 * fields under their kind's key.
 */
export function eventToFacts(event: unknown): MappedEvent {
  const e = record(event);
  if (!e) throw new InvalidArgumentError('the event is not a JSON object');
  const kind = e['kind'];
  if (typeof kind !== 'string') throw new InvalidArgumentError('the event has no "kind"');
  if (kind === 'agent') throw new InvalidArgumentError('an agent event (ready, stopped) has no decision to explain');
  const facts: Record<string, unknown> = { hook: kind };
  const notes: string[] = [];
  const proc = record(e['process']);
  if (proc) {
    if (typeof proc['uid'] === 'number') facts['uid'] = proc['uid'];
    if (typeof proc['gid'] === 'number') facts['gid'] = proc['gid'];
    if (typeof proc['cgroup_id'] === 'string' || typeof proc['cgroup_id'] === 'number') {
      facts['cgroups'] = [proc['cgroup_id']];
      notes.push("the event names the task's cgroup, not its ancestors: a cgroup selector on a parent cgroup shows as not matching");
    }
  }
  const detail = record(e[kind]);
  if (kind === 'exec' && detail) {
    const path = typeof detail['path'] === 'string' && detail['path'] !== '' ? detail['path'] : undefined;
    const binary: Record<string, unknown> = { path: path ?? detail['filename'] };
    if (path === undefined) notes.push('the kernel did not resolve the executed file\'s path: the name given to execve() stands in for it');
    if (typeof detail['dev'] === 'string') binary['dev'] = detail['dev'];
    if (typeof detail['ino'] === 'string' || typeof detail['ino'] === 'number') binary['ino'] = detail['ino'];
    facts['binary'] = binary;
    notes.push('an exec event does not carry the environment, the parent or the ancestors: selectors on them are unknown (?) unless given with --env, --parent, --ancestor');
  } else if (detail) {
    for (const key of FACT_FIELDS) {
      const v = detail[key];
      if (typeof v === 'string' || typeof v === 'number') facts[key] = v;
    }
  }
  const mapped: MappedEvent = { facts, notes };
  const policy = record(e['policy']);
  if (typeof e['decision'] === 'string') {
    const rule = record(policy?.['rule']);
    const by = rule ? `${String(rule['policy'])}/${String(rule['rule'])}` : typeof policy?.['decided_by'] === 'string' ? String(policy['decided_by']) : undefined;
    const generation = typeof policy?.['generation'] === 'number' ? ` (generation ${policy['generation']})` : '';
    mapped.recorded = `${e['decision']}${by ? ` by ${by}` : ''}${generation}`;
  }
  return mapped;
}

const MARK = { true: '✔', false: '✘', unknown: '?' } as const;
const ref = (r: RuleRef): string => `${r.policy}/${r.rule}`;

export function renderDecision(hook: string, d: Decision): string {
  const lines: string[] = [];
  if (d.decidedBy) {
    lines.push(`${d.verdict} by ${ref(d.decidedBy)} (action ${d.action})`);
  } else {
    lines.push(`${d.verdict} by the ${hook} default (${d.defaultAction})`);
  }
  if (d.killed) lines.push('the process is killed');
  if (d.secureexec) lines.push('the program runs in secure-execution mode (AT_SECURE)');
  if (d.wouldDeny) lines.push(`would deny: ${ref(d.wouldDeny)} (monitor mode)`);
  else if (d.defaultWouldDeny) lines.push(`would deny: the ${hook} default of a monitor-mode policy`);
  if (d.audit) lines.push(`audited by ${ref(d.audit)}`);
  lines.push('', d.trace.length ? `${hook} rules, in order:` : `no rule on ${hook}`);
  for (const t of d.trace) {
    lines.push(`  ${t.matched ? MARK.true : MARK.false} ${ref(t)}  ${t.action}${t.mode === 'monitor' ? ' (monitor)' : ''}`);
    if (t.selectors.length === 0) lines.push('      (no selectors: every event of the hook)');
    for (const s of t.selectors) lines.push(`      ${MARK[String(s.result) as keyof typeof MARK]} ${s.selector}: ${s.reason}`);
  }
  return lines.join('\n');
}

const collect = (value: string, previous: string[]): string[] => [...previous, value];

function u32(value: string): number {
  if (!/^\d{1,10}$/.test(value) || Number(value) > 0xffff_ffff) throw new InvalidArgumentError('a number from 0 to 4294967295');
  return Number(value);
}

function port(value: string): number {
  if (!/^\d{1,5}$/.test(value) || Number(value) > 65535) throw new InvalidArgumentError('a port, 0 to 65535');
  return Number(value);
}

function readEvent(text: string): unknown {
  const source = text === '-' ? readFileSync(0, 'utf8') : text;
  const line = source.split('\n').find((l) => l.trim() !== '') ?? '';
  try {
    return JSON.parse(line);
  } catch (err) {
    throw new CliError(`--event: not JSON (${err instanceof Error ? err.message : String(err)})`, ExitCode.usage);
  }
}

export function registerExplain(program: Command): void {
  addSocketOption(
    program
      .command('explain')
      .summary('why the running agent allows or denies an event: the deciding rule and every selector')
      .description(
        "show the decision the running agent's policies and lists take for an event, and why: the rule that decided (or the hook's default), " +
          'then every rule of the hook with each selector matching (✔), not matching (✘) or unknown (?). The event is a line of ' +
          "`krsi run`'s stream (--event), facts given with flags, or both (flags add to and override the event's facts).",
      )
      .option('--event <json>', 'an event line from `krsi run` (- reads it from stdin)')
      .option('--hook <hook>', 'exec, file_open, file_unlink, mount, module_load or connect')
      .option('--binary <path>', 'exec: the file executed; other hooks: the executable of the acting process')
      .option('--binary-dev <major:minor>', "the binary's device")
      .option('--binary-ino <inode>', "the binary's inode number")
      .option('--sha256 <hex>', "the binary's sha256")
      .option('--parent <path>', "the parent process's executable")
      .option('--ancestor <path>', 'an ancestor process\'s executable (repeatable)', collect, [])
      .option('--uid <uid>', 'real user id', u32)
      .option('--gid <gid>', 'real group id', u32)
      .option('--cgroup <id>', "a cgroup id of the task: its own, then its ancestors' (repeatable)", collect, [])
      .option('--env <name>', 'exec: an environment variable set (repeatable)', collect, [])
      .option('--file <path>', 'file_open, file_unlink, module_load: the file')
      .option('--fstype <type>', 'mount: the file system type')
      .option('--source <path>', 'mount: the mount source')
      .option('--device <major:minor>', 'mount: the block device')
      .option('--module <name>', 'module_load: the module name')
      .option('--address <ip>', 'connect: the destination address')
      .option('--port <port>', 'connect: the destination port', port)
      .option('--json', 'print the Decision as JSON')
      .addHelpText(
        'after',
        '\nExamples:\n' +
          '  krsi explain --hook exec --binary /usr/bin/nc --uid 1000 --env LD_PRELOAD\n' +
          "  krsi explain --event \"$(krsi run | grep '\"denied\"' | head -1)\"\n" +
          '  krsi explain --hook connect --address 169.254.169.254 --port 80 --uid 1000',
      ),
  ).action(async (opts: ExplainOptions) => {
    const mapped: MappedEvent = opts.event === undefined ? { facts: {}, notes: [] } : mapEvent(readEvent(opts.event));
    const facts = mapped.facts;
    if (opts.hook !== undefined) facts['hook'] = opts.hook;
    if (facts['hook'] === undefined) throw new CliError('give the event (--event) or its hook (--hook exec, ...)', ExitCode.usage);
    if (opts.binary !== undefined || opts.binaryDev !== undefined || opts.binaryIno !== undefined || opts.sha256 !== undefined) {
      const binary = { ...(record(facts['binary']) ?? {}) };
      if (opts.binary !== undefined) binary['path'] = opts.binary;
      if (opts.binaryDev !== undefined) binary['dev'] = opts.binaryDev;
      if (opts.binaryIno !== undefined) binary['ino'] = opts.binaryIno;
      if (opts.sha256 !== undefined) binary['sha256'] = opts.sha256;
      if (binary['path'] === undefined) throw new CliError('--binary-dev, --binary-ino and --sha256 need --binary <path>', ExitCode.usage);
      facts['binary'] = binary;
    }
    if (opts.parent !== undefined) facts['parent'] = opts.parent;
    if (opts.ancestor.length) facts['ancestors'] = opts.ancestor;
    if (opts.cgroup.length) facts['cgroups'] = opts.cgroup;
    if (opts.env.length) facts['env'] = opts.env;
    for (const key of ['uid', 'gid', 'file', 'fstype', 'source', 'device', 'module', 'address', 'port'] as const) {
      if (opts[key] !== undefined) facts[key] = opts[key];
    }

    const { EventFactsSchema, formatZodIssues } = await import('../../control/protocol.js');
    const parsed = EventFactsSchema.safeParse(facts);
    if (!parsed.success) throw new CliError(`the event's facts are invalid: ${formatZodIssues(parsed.error.issues)}`, ExitCode.usage);
    const decision = await withAgent(opts.socket, (client) => client.explain(parsed.data));
    if (opts.json) out(json(decision));
    else {
      const lines = [renderDecision(parsed.data.hook, decision)];
      if (mapped.recorded !== undefined) lines.push('', `when the event happened: ${mapped.recorded}`);
      for (const note of mapped.notes) lines.push(`note: ${note}`);
      out(lines.join('\n'));
    }
    process.exitCode = ExitCode.ok;
  });
}

function mapEvent(event: unknown): MappedEvent {
  try {
    return eventToFacts(event);
  } catch (err) {
    if (err instanceof InvalidArgumentError) throw new CliError(`--event: ${err.message}`, ExitCode.usage);
    throw err;
  }
}

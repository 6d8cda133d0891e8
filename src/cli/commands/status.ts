// krsi status: what the running agent enforces and how it is doing.
import type { Command } from 'commander';
import type { AgentStatus } from '../../agent/control-api.js';
import { ExitCode } from '../exit-codes.js';
import { addSocketOption, json, out, withAgent, type SocketOptions } from './agent-connection.js';

export function renderStatus(s: AgentStatus): string {
  const lines = [
    `agent pid ${s.pid} on Linux ${s.kernel}, up ${s.uptimeSeconds} s`,
    `agent process: CPU ${s.process.cpuUserSeconds.toFixed(2)} s user + ${s.process.cpuSystemSeconds.toFixed(2)} s system, RSS ${(s.process.rssBytes / 1048576).toFixed(1)} MiB`,
    `policy generation ${s.generation}: ${s.policies.length ? s.policies.join(', ') : 'no policies'}`,
    `programs: ${s.programs.join(', ')}`,
    `events received: ${s.received}`,
    `lock point: ${s.lockPoint.reached ? `reached at ${s.lockPoint.since}` : 'not reached (afterLockPoint rules are not in force)'}`,
    `reactions: ${s.reactions.count}${s.reactions.p50Us === null ? '' : `, latency p50 ${s.reactions.p50Us.toFixed(0)} µs, p99 ${s.reactions.p99Us?.toFixed(0)} µs`}`,
    ...(['decisions', 'events'] as const).map((ring) => {
      const a = s.accounting[ring];
      return `${ring} ring: attempted ${a.attempted} = received ${a.received} + dropped ${a.dropped} + pending ${a.pending} (${a.gaps} gaps marked, ${a.missing} records)`;
    }),
    `locked: ${s.locked ? 'yes, until reboot' : 'no'}; landlock: ${s.landlock ? `ABI ${s.landlock.abi}${s.landlock.verified ? ', verified' : ''}` : 'off'}`,
    `tamper attempts denied: ${Object.entries(s.tamper).filter(([, n]) => n > 0).map(([k, n]) => `${k} ${n}`).join(', ') || 'none'}`,
    'lists:',
    ...(s.lists.length ? s.lists.map((l) => `  ${l.name} (${l.type}): ${l.size} entries`) : ['  none']),
    `hooks attached: ${s.hooks.filter((h) => h.attached).length} of ${s.hooks.length}`,
    ...s.hooks.filter((h) => !h.attached).map((h) => `  NOT attached: ${h.hook} (${h.program})`),
    'rules:',
    ...(s.rules.length
      ? s.rules.map((r) => `  ${r.policy}/${r.rule} (${r.hook}, ${r.action}): ${r.state}${r.reason ? ` - ${r.reason}` : ''}`)
      : ['  none']),
    'per hook: seen / denied / emitted / dropped / rate-limited',
    ...Object.entries(s.counters).map(([hook, c]) => `  ${hook}: ${c.seen} / ${c.denied} / ${c.emitted} / ${c.dropped} / ${c.rate_limited}`),
  ];
  return lines.join('\n');
}

export function registerStatus(program: Command): void {
  addSocketOption(
    program.command('status').summary('what the running agent enforces, and its counters').option('--json', 'print the status as JSON'),
  ).action(async (opts: SocketOptions & { json?: boolean }) => {
    const status = await withAgent(opts.socket, (client) => client.status());
    out(opts.json ? json(status) : renderStatus(status));
    process.exitCode = ExitCode.ok;
  });
}

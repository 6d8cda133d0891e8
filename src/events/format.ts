// Event stream renderings: JSON lines (the stable interface) and a readable
// line per event for people at a terminal.
import { eventKind } from '../families/family.js';
import { FAMILY_EVENTS } from '../families/index.js';
import type { KrsiEvent, PolicyHookEvent, PolicyOutcome } from './schema.js';
import { printable, quoteArg } from './text.js';

/** What each policy hook's event is about, in words (its family's `what`). */
const WHAT = new Map(
  FAMILY_EVENTS.flatMap((e) => {
    const what = e.what;
    return what ? [[eventKind(e.schema), (event: PolicyHookEvent) => what.call(e, event)] as const] : [];
  }),
);

export type EventFormat = 'json' | 'text';

export function formatJson(event: KrsiEvent): string {
  return JSON.stringify(event);
}


/** ` by policy/rule (killed)` and `[would deny: ...; audit: ...]` of a decision. */
function decidedBy(pol: PolicyOutcome): { rule: string; notes: string } {
  const rule = pol.rule
    ? ` by ${pol.rule.policy}/${pol.rule.rule}${pol.killed ? ' (killed)' : ''}`
    : pol.decided_by === 'default' && pol.default === 'deny'
      ? ' by default'
      : '';
  const notes = [
    pol.would_deny ? `would deny: ${pol.would_deny.policy}/${pol.would_deny.rule}` : '',
    pol.default_would_deny ? 'would deny by default' : '',
    pol.audit ? `audit: ${pol.audit.policy}/${pol.audit.rule}` : '',
  ].filter(Boolean);
  return { rule, notes: notes.length ? ` [${notes.join('; ')}]` : '' };
}

export function formatText(event: KrsiEvent): string {
  const clock = event.time.slice(11, 23);
  const what = WHAT.get(event.kind);
  if (what && event.kind !== 'exec' && 'policy' in event) {
    const p = event.process;
    const verdict = event.decision === 'denied' ? 'DENIED ' : 'allowed';
    const { rule, notes } = decidedBy(event.policy);
    return `${clock} ${event.kind} ${verdict} pid=${p.pid} uid=${p.uid} comm=${quoteArg(p.comm)} ${what(event)}${rule}${notes}`;
  }
  switch (event.kind) {
    case 'exec': {
      const p = event.process;
      const verdict = event.decision === 'denied' ? 'DENIED ' : 'allowed';
      const pol = event.policy;
      const rule = pol.rule
        ? ` by ${pol.rule.policy}/${pol.rule.rule}${pol.killed ? ' (killed)' : ''}`
        : pol.decided_by === 'default' && pol.default === 'deny'
          ? ' by default'
          : '';
      const notes = [
        pol.would_deny ? `would deny: ${pol.would_deny.policy}/${pol.would_deny.rule}` : '',
        pol.default_would_deny ? 'would deny by default' : '',
        pol.audit ? `audit: ${pol.audit.policy}/${pol.audit.rule}` : '',
        pol.secureexec ? 'secureexec' : '',
        event.exec.fileless ? `fileless: ${event.exec.fileless}` : '',
        event.exec.env_mismatch ? 'environment rewritten after the check' : '',
      ].filter(Boolean);
      const env = Object.entries(event.exec.env ?? {})
        .map(([k, v]) => `${k}=${quoteArg(v)}`)
        .join(' ');
      const argv = event.exec.argv.map(quoteArg).join(' ') + (event.exec.argv_truncated ? ' …' : '');
      const via = event.exec.filename !== event.exec.path && !event.exec.path.endsWith(`/${event.exec.filename}`) ? ` (as ${quoteArg(event.exec.filename)})` : '';
      return `${clock} exec ${verdict} pid=${p.pid} ppid=${p.ppid} uid=${p.uid} comm=${quoteArg(p.comm)} ${printable(event.exec.path)}${via}${rule}${notes.length ? ` [${notes.join('; ')}]` : ''}  argv: ${argv}${env ? `  env: ${env}` : ''}`;
    }
    case 'gap':
      return `${clock} GAP: ${event.missing} ${event.ring} records lost on CPU ${event.cpu} (ring full), from sequence ${event.first_seq}`;
    case 'tamper': {
      const p = event.process;
      return `${clock} TAMPER denied: ${event.attempt} (detail ${event.detail}, target ${event.target}) by pid=${p.pid} uid=${p.uid} comm=${quoteArg(p.comm)}`;
    }
    case 'reaction': {
      const acts = event.actions
        .map((a) => (a.do === 'add' ? `added ${quoteArg(a.entry)} to ${a.list}${a.ttl_seconds ? ` for ${a.ttl_seconds}s` : ''}` : `killed ${a.pids.join(',') || 'nothing'}`))
        .join('; ');
      return `${clock} reaction ${event.reaction.policy}/${event.reaction.name} to ${event.trigger.policy}/${event.trigger.rule} (pid ${event.trigger.pid}): ${acts || 'nothing done'} in ${event.latency_us} µs${event.errors.length ? ` [${event.errors.join('; ')}]` : ''}`;
    }
    case 'module_hidden': {
      const p = event.process;
      return `${clock} MODULE HIDDEN: ${printable(event.module.name)} is missing from ${event.module.missing_from.join(' and ')}${event.module.taints.length ? ` (taints ${event.module.taints.join('')})` : ''}${p ? `; loaded by pid=${p.pid} uid=${p.uid} comm=${quoteArg(p.comm)}` : ''}${event.module.loaded_at ? ` at ${event.module.loaded_at}` : ''}`;
    }
    case 'agent': {
      const hooks = Object.entries(event.counters)
        .map(([hook, c]) => `${hook}: seen ${c.seen}, denied ${c.denied}, emitted ${c.emitted}, dropped ${c.dropped}${c.rate_limited ? `, rate-limited ${c.rate_limited}` : ''}`)
        .join('; ');
      return `${clock} agent ${event.state} on Linux ${event.kernel}: ${event.programs.length} programs, policy generation ${event.generation}; received ${event.received}${hooks ? `; ${hooks}` : ''}`;
    }
    default:
      throw new Error(`no text for a ${event.kind} event: its family has no \`what\``);
  }
}

export function formatEvent(event: KrsiEvent, format: EventFormat): string {
  return format === 'json' ? formatJson(event) : formatText(event);
}

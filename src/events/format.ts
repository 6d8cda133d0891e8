// Event stream renderings: JSON lines (the stable interface) and a readable
// line per event for people at a terminal.
import type { KrsiEvent } from './schema.js';
import { printable } from './text.js';

export type EventFormat = 'json' | 'text';

export function formatJson(event: KrsiEvent): string {
  return JSON.stringify(event);
}

function quoteArg(arg: string): string {
  const safe = printable(arg);
  return /^[\w@%+=:,./-]+$/.test(safe) ? safe : `'${safe.replace(/'/g, `'\\''`)}'`;
}

export function formatText(event: KrsiEvent): string {
  const clock = event.time.slice(11, 23);
  switch (event.kind) {
    case 'exec': {
      const p = event.process;
      const verdict = event.decision === 'denied' ? 'DENIED ' : 'allowed';
      const rule = event.rule ? ` rule=${event.rule.id}` : '';
      const argv = event.exec.argv.map(quoteArg).join(' ') + (event.exec.argv_truncated ? ' …' : '');
      const via = event.exec.filename !== event.exec.path && !event.exec.path.endsWith(`/${event.exec.filename}`) ? ` (as ${quoteArg(event.exec.filename)})` : '';
      return `${clock} exec ${verdict} pid=${p.pid} ppid=${p.ppid} uid=${p.uid} comm=${quoteArg(p.comm)} ${printable(event.exec.path)}${via}${rule}  argv: ${argv}`;
    }
    case 'agent': {
      const hooks = Object.entries(event.counters)
        .map(([hook, c]) => `${hook}: seen ${c.seen}, denied ${c.denied}, emitted ${c.emitted}, dropped ${c.dropped}`)
        .join('; ');
      return `${clock} agent ${event.state} on Linux ${event.kernel}: ${event.programs.length} programs; received ${event.received}${hooks ? `; ${hooks}` : ''}`;
    }
  }
}

export function formatEvent(event: KrsiEvent, format: EventFormat): string {
  return format === 'json' ? formatJson(event) : formatText(event);
}

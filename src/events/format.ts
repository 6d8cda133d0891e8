// Event stream renderings: JSON lines (the stable interface) and a readable
// line per event for people at a terminal.
import type { KrsiEvent, PolicyOutcome } from './schema.js';
import { printable } from './text.js';

export type EventFormat = 'json' | 'text';

export function formatJson(event: KrsiEvent): string {
  return JSON.stringify(event);
}

function quoteArg(arg: string): string {
  const safe = printable(arg);
  return /^[\w@%+=:,./-]+$/.test(safe) ? safe : `'${safe.replace(/'/g, `'\\''`)}'`;
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
    case 'file_open':
    case 'file_unlink':
    case 'mount':
    case 'module_load':
    case 'connect':
    case 'mmap_exec':
    case 'ptrace':
    case 'bpf':
    case 'setid': {
      const p = event.process;
      const verdict = event.decision === 'denied' ? 'DENIED ' : 'allowed';
      const { rule, notes } = decidedBy(event.policy);
      let what: string;
      switch (event.kind) {
        case 'file_open':
          what = `${printable(event.file.path)} (${event.file.flag_names.join('|')})`;
          break;
        case 'file_unlink':
          what = `${printable(event.file.path)}${event.file.operation === 'rename' ? ' (replaced by a rename)' : ''}${event.file.self_delete ? ' [its own executable]' : ''}`;
          break;
        case 'mmap_exec':
          what = `${printable(event.program.path) || '?'} maps ${printable(event.library.path) || `${event.library.dev}:${event.library.ino}`} executable (${event.mmap.source})`;
          break;
        case 'ptrace': {
          const t = event.ptrace.target;
          what = `${event.ptrace.request} ${event.ptrace.request === 'traceme' ? 'by parent ' : ''}pid=${t.pid} uid=${t.uid} comm=${quoteArg(t.comm)} ${printable(t.exe)}`;
          break;
        }
        case 'bpf':
          what = `prog_load ${event.bpf.prog_type} ${quoteArg(event.bpf.prog_name)} (${event.bpf.insn_count} insns)`;
          break;
        case 'setid': {
          const k = event.setid.kind;
          const before = k === 'uid' ? event.setid.old.euid : event.setid.old.egid;
          const after = k === 'uid' ? event.setid.new.euid : event.setid.new.egid;
          what = `${event.setid.call} e${k} ${before} -> ${after}`;
          break;
        }
        case 'mount':
          what = `${printable(event.mount.fstype)} ${event.mount.source === null ? '(source unknown)' : quoteArg(event.mount.source)} on ${event.mount.mountpoint === null ? '?' : printable(event.mount.mountpoint)} dev=${event.mount.device}${event.mount.bus === null ? '' : ` bus=${event.mount.bus.join(',') || '-'}${event.mount.removable ? ' removable' : ''}`}`;
          break;
        case 'module_load':
          what = `${event.module.name === null ? '(unknown name)' : printable(event.module.name)} from ${event.module.path === null ? event.module.source : printable(event.module.path)} sha256=${event.module.sha256 ?? '?'}`;
          break;
        case 'connect':
          what =
            event.connect.address === null
              ? `${event.connect.family} ${event.connect.socket_type}`
              : `${event.connect.family === 'inet6' ? `[${event.connect.address}]` : event.connect.address}:${event.connect.port} ${event.connect.socket_type}`;
          break;
      }
      return `${clock} ${event.kind} ${verdict} pid=${p.pid} uid=${p.uid} comm=${quoteArg(p.comm)} ${what}${rule}${notes}`;
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
  }
}

export function formatEvent(event: KrsiEvent, format: EventFormat): string {
  return format === 'json' ? formatJson(event) : formatText(event);
}

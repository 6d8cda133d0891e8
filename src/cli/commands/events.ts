// krsi events: the running agent's events, from its control socket
// (events.subscribe), filtered there; JSON lines or a readable line each.
// Without --follow: the recent events the agent keeps (at most 1000), then exit.
import { connect } from 'node:net';
import { createInterface } from 'node:readline';
import { InvalidArgumentError, Option, type Command } from 'commander';
import { formatEvent, type EventFormat } from '../../events/format.js';
import type { KrsiEvent } from '../../events/schema.js';
import type { EventFilter } from '../../ops/filter.js';
import { CliError, ExitCode } from '../exit-codes.js';
import { addSocketOption, type SocketOptions } from './agent-connection.js';

interface EventsOptions extends SocketOptions {
  follow: boolean;
  format: EventFormat;
  hook: string[];
  decision: Array<'allowed' | 'denied'>;
  binary: string[];
  uid: number[];
  cgroup: string[];
  rule: string[];
  backlog?: number;
  count?: number;
}

const list = (value: string, previous: string[]): string[] => [...previous, ...value.split(',').filter(Boolean)];
const uids = (value: string, previous: number[]): number[] => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 0xffff_ffff) throw new InvalidArgumentError('a uid (a number)');
  return [...previous, n];
};
const count = (value: string): number => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('a whole number');
  return n;
};
const decisions = (value: string, previous: string[]): string[] => {
  for (const d of value.split(',')) if (d !== 'allowed' && d !== 'denied') throw new InvalidArgumentError('allowed or denied');
  return [...previous, ...value.split(',')];
};

export function filterFromOptions(o: Pick<EventsOptions, 'hook' | 'decision' | 'binary' | 'uid' | 'cgroup' | 'rule'>): EventFilter {
  const f: EventFilter = {};
  if (o.hook.length) f.hook = o.hook;
  if (o.decision.length) f.decision = o.decision;
  if (o.binary.length) f.binary = o.binary;
  if (o.uid.length) f.uid = o.uid;
  if (o.cgroup.length) f.cgroup = o.cgroup;
  if (o.rule.length) f.rule = o.rule;
  return f;
}

export function registerEvents(program: Command): void {
  addSocketOption(
    program
      .command('events')
      .summary("the running agent's events, filtered")
      .description("print the running agent's events: the recent ones it keeps, or (--follow) those to come; filters repeat and take comma-separated values")
      .option('-f, --follow', 'keep printing events as they come, until interrupted', false)
      .addOption(new Option('--format <format>', 'JSON lines or a readable line per event').choices(['json', 'text']).default('json'))
      .option('--hook <kind>', 'event kind: exec, file_open, connect, tamper, ...', list, [])
      .option('--decision <d>', 'allowed or denied', decisions, [])
      .option('--binary <path>', 'executable path, basename or glob (*)', list, [])
      .option('--uid <uid>', 'the acting process uid', uids, [])
      .option('--cgroup <id|path>', 'a cgroup id, or a cgroup path and what is below it', list, [])
      .option('--rule <policy/rule>', 'a rule that decided, matched, audited or would have denied (or a rule name of any policy)', list, [])
      .option('--backlog <n>', 'recent events to print first (default: 100 without --follow, 0 with it)', count)
      .option('--count <n>', 'exit after printing n events', count),
  ).action(async (opts: EventsOptions) => {
    process.exitCode = await follow(opts);
  });
}

function follow(opts: EventsOptions): Promise<number> {
  const filter = filterFromOptions(opts);
  const backlog = opts.backlog ?? (opts.follow ? 0 : 100);
  return new Promise((resolve, reject) => {
    const socket = connect(opts.socket);
    let printed = 0;
    let answered = false;
    let done = false;
    const finish = (code: number): void => {
      if (done) return;
      done = true;
      socket.destroy();
      resolve(code);
    };
    socket.once('error', (err: NodeJS.ErrnoException) => {
      if (done) return;
      done = true;
      const why =
        err.code === 'ENOENT' || err.code === 'ECONNREFUSED'
          ? `no krsi agent is running (nothing listens on ${opts.socket})`
          : err.code === 'EACCES' || err.code === 'EPERM'
            ? `permission denied on ${opts.socket}: the krsi control socket is for root only`
            : `cannot read events from ${opts.socket}: ${err.message}`;
      reject(new CliError(why, ExitCode.failure));
    });
    socket.once('connect', () => socket.write(`${JSON.stringify({ id: 1, method: 'events.subscribe', params: { filter, backlog } })}\n`));
    socket.once('close', () => {
      if (done) return;
      if (!answered) {
        done = true;
        reject(new CliError('the agent closed the connection', ExitCode.failure));
        return;
      }
      // The agent stopped: the stream ends.
      finish(ExitCode.ok);
    });
    process.stdout.on('error', () => finish(ExitCode.ok)); // `krsi events -f | head`
    createInterface({ input: socket }).on('line', (line) => {
      if (done || line.trim() === '') return;
      const msg = JSON.parse(line) as { id?: number; error?: { message: string; code: string }; event?: KrsiEvent; lost?: number; live?: boolean };
      if (!answered) {
        answered = true;
        if (msg.error) {
          done = true;
          socket.destroy();
          reject(new CliError(msg.error.code === 'unknown-method' ? `the agent cannot stream events (is it an older krsi?): ${msg.error.message}` : msg.error.message, ExitCode.failure));
        }
        return;
      }
      if (msg.lost !== undefined) {
        process.stderr.write(`krsi events: ${msg.lost} events lost here (this reader was too slow; the agent went on)\n`);
        return;
      }
      if (msg.live) {
        if (!opts.follow) finish(ExitCode.ok);
        return;
      }
      if (msg.event) {
        process.stdout.write(`${formatEvent(msg.event, opts.format)}\n`);
        printed++;
        if (opts.count !== undefined && printed >= opts.count) finish(ExitCode.ok);
      }
    });
    process.once('SIGINT', () => finish(ExitCode.ok));
    process.once('SIGTERM', () => finish(ExitCode.ok));
  });
}

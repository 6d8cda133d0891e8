// krsi run: enforce policies and stream events as JSON lines (or text) until
// SIGINT, SIGTERM or `krsi stop`, then detach everything. SIGHUP reloads the
// policy files: all or nothing.
import { Command, InvalidArgumentError, Option } from 'commander';
import type { Agent } from '../../agent/agent.js';
import type { LoadedPolicySource } from '../../agent/control-api.js';
import { InputError } from '../../errors.js';
import { formatEvent, type EventFormat } from '../../events/format.js';
import type { KrsiEvent } from '../../events/schema.js';
import { log } from '../../log.js';
import { confineAndReexec, verifyConfinement } from '../../system/landlock.js';
import { bpffs, ensureMounted } from '../../system/mounts.js';
import { dirname, resolve } from 'node:path';
import { CliError, ExitCode } from '../exit-codes.js';
import { explainKernelError } from '../kernel-errors.js';
import { parseListenAddress } from '../../ops/address.js';
import type { Operations } from '../../ops/operations.js';

interface RunOptions {
  policy: string[];
  pinRoot: string;
  failOpen: boolean;
  protect: boolean;
  landlock: boolean;
  format: EventFormat;
  allowed: boolean;
  argsMax?: number;
  lists: string;
  socket: string;
  control: boolean;
  decisionsRing?: number;
  eventsRing?: number;
  listCapacity?: number;
  eventsPerSecond?: number;
  envRecord: string[];
  ima: boolean;
  eventsFile?: string;
  eventsFileMaxBytes: number;
  eventsFileKeep: number;
  metrics?: string;
  enrich: boolean;
}

const collect = (value: string, previous: string[]): string[] => [...previous, value];

function parseArgsMax(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 4096) throw new InvalidArgumentError('an integer from 0 to 4096');
  return n;
}

/** A ring buffer's size: a power of two pages, 4 KiB to 1 GiB. */
function parseRingBytes(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 4096 || n > 2 ** 30 || (n & (n - 1)) !== 0) {
    throw new InvalidArgumentError('a power of two from 4096 to 1073741824');
  }
  return n;
}

/** Entries a list map holds: 1 to 4 Mi (allocated as used, not up front). */
function parseListCapacity(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 2 ** 22) throw new InvalidArgumentError('an integer from 1 to 4194304');
  return n;
}

function parseByteSize(value: string): number {
  const m = /^(\d+)([KMG]i?B?)?$/i.exec(value);
  const mult = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[(m?.[2]?.[0] ?? '').toLowerCase()] ?? 1;
  const n = m ? Number(m[1]) * mult : NaN;
  if (!Number.isSafeInteger(n) || n < 4096) throw new InvalidArgumentError('a size of at least 4096 bytes (e.g. 104857600, 100M)');
  return n;
}

function parseKeep(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 1000) throw new InvalidArgumentError('an integer from 0 to 1000');
  return n;
}

function parseAddress(value: string): string {
  try {
    parseListenAddress(value);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
  return value;
}

function parseRate(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('a positive integer');
  return n;
}

export function registerRun(program: Command): void {
  program
    .command('run')
    .description('enforce policies with BPF LSM programs and stream events until SIGINT, SIGTERM or `krsi stop`')
    .option('--policy <path>', 'a policy file or directory (repeatable); SIGHUP reloads them', collect, [])
    .addOption(new Option('--format <format>', 'event output').choices(['json', 'text']).default('json'))
    .option('--no-allowed', 'report only noteworthy execs (denied, audited, monitored), not every exec')
    .option('--args-max <bytes>', 'bytes of argv per event (0-4096)', parseArgsMax)
    .option('--lists <file>', 'where dynamic lists are kept', '/var/lib/krsi/lists.json')
    .addOption(new Option('--socket <path>', 'the control socket').default('/run/krsi/krsi.sock').env('KRSI_SOCKET'))
    .option('--no-control', 'serve no control socket')
    .option('--pin-root <dir>', 'where maps and links are pinned in bpffs', '/sys/fs/bpf/krsi')
    .option('--fail-open', 'stop enforcing if the agent dies (default: enforcement outlives it until a clean stop)', false)
    .option('--no-protect', 'let root signal, ptrace or unpin the agent (default: only `krsi stop` stops it)')
    .option('--decisions-ring <bytes>', 'size of the ring for denials, kills and tamper events (default 1 MiB)', parseRingBytes)
    .option('--events-ring <bytes>', 'size of the ring for other events (default 4 MiB)', parseRingBytes)
    .option('--list-capacity <n>', 'entries the kernel holds across all lists of strings (paths, names), and as many across all lists of values (inodes, digests, ids) (default 262144)', parseListCapacity)
    .option('--events-per-second <n>', 'read at most this many non-decision events a second; the rest are counted as dropped (default 20000)', parseRate)
    .option('--no-landlock', 'do not confine the agent with Landlock (default: it may write only its own state and execute nothing)')
    .option(
      '--env-record <name>',
      'record the value of this environment variable in exec events (repeatable, at most 8; replaces the default LD_PRELOAD, LD_AUDIT, LD_LIBRARY_PATH; "-" records none)',
      collect,
      [],
    )
    .option('--events-file <path>', 'also write the event stream as JSON lines to this file, rotated by size')
    .option('--events-file-max-bytes <n>', 'rotate the events file before it grows past this size (suffixes K, M, G)', parseByteSize, 100 * 1024 * 1024)
    .option('--events-file-keep <k>', 'rotated events files kept (PATH.1 newest ... PATH.K oldest)', parseKeep, 5)
    .option('--metrics <host:port>', 'serve Prometheus metrics on http://host:port/metrics (e.g. 127.0.0.1:9464)', parseAddress)
    .option('--no-enrich', 'do not add ancestors, cgroup path, container id and user names to events')
    .option('--no-ima', "compute sha256 digests in the agent instead of with IMA in the kernel (the fallback for kernels without bpf_ima_file_hash)")
    .action(async (opts: RunOptions) => {
      process.exitCode = await run(opts);
    });
}

/** Loads and validates policy files; every error is reported, none is applied. */
async function loadSources(paths: readonly string[]): Promise<LoadedPolicySource[]> {
  if (paths.length === 0) return [];
  const { loadPolicies, formatPolicyError } = await import('../../policy/load.js');
  const result = await loadPolicies(paths);
  if (result.errors.length > 0) {
    throw new InputError(`invalid policy:\n${result.errors.map(formatPolicyError).join('\n')}`);
  }
  return result.policies.map((p) => ({ policy: p.policy, source: p.source.file }));
}

/**
 * Where the agent writes: its list store and state file, its control
 * socket, its pins. With Landlock, nowhere else.
 */
function writableDirs(opts: RunOptions): string[] {
  return [
    dirname(resolve(opts.lists)),
    ...(opts.control ? [dirname(resolve(opts.socket))] : []),
    resolve(opts.pinRoot),
    ...(opts.eventsFile ? [dirname(resolve(opts.eventsFile))] : []),
  ];
}

async function run(opts: RunOptions): Promise<number> {
  let ops: Operations | null = null;
  const write = (event: KrsiEvent): void => {
    ops?.enrich(event);
    const json = formatEvent(event, 'json');
    process.stdout.write(`${opts.format === 'json' ? json : formatEvent(event, opts.format)}\n`);
    ops?.publish(event, json);
  };
  let sources: LoadedPolicySource[];
  try {
    sources = await loadSources(opts.policy);
  } catch (err) {
    if (err instanceof InputError) throw new CliError(err.message, ExitCode.usage);
    throw err;
  }
  // An invalid policy is reported before anything else happens; the
  // confined image loads it again.
  if (opts.landlock) {
    // bpffs must be mounted before the agent may no longer run mount(8).
    ensureMounted(bpffs);
    confineAndReexec(writableDirs(opts)); // returns only where Landlock is unavailable
  }

  try {
    const { Operations } = await import('../../ops/operations.js');
    ops = new Operations({
      enrich: opts.enrich,
      ...(opts.eventsFile ? { eventsFile: { path: resolve(opts.eventsFile), maxBytes: opts.eventsFileMaxBytes, keep: opts.eventsFileKeep } } : {}),
    });
  } catch (err) {
    throw new CliError(`cannot open the events file ${opts.eventsFile}: ${(err as Error).message}`, ExitCode.failure);
  }

  let requestStop: (reason: string) => void = () => undefined;
  const stopped = new Promise<string>((resolve) => {
    requestStop = resolve;
  });

  const { Agent } = await import('../../agent/agent.js');
  let agent: Agent;
  try {
    agent = await Agent.start({
      // No --policy: keep the policy an earlier agent left in force, if any.
      ...(opts.policy.length > 0 ? { policies: sources } : {}),
      pinRoot: opts.pinRoot,
      failOpen: opts.failOpen,
      protect: opts.protect,
      listsPath: opts.lists,
      emitAllowed: opts.allowed,
      ...(opts.argsMax === undefined ? {} : { argsMax: opts.argsMax }),
      ...(opts.decisionsRing === undefined ? {} : { decisionsRingBytes: opts.decisionsRing }),
      ...(opts.eventsRing === undefined ? {} : { eventsRingBytes: opts.eventsRing }),
      ...(opts.listCapacity === undefined ? {} : { listCapacity: opts.listCapacity }),
      ...(opts.eventsPerSecond === undefined ? {} : { eventsPerSecond: opts.eventsPerSecond }),
      ...(opts.envRecord.length === 0 ? {} : { envRecord: opts.envRecord.filter((n) => n !== '-') }),
      ...(opts.ima ? {} : { ima: false }),
      onEvent: write,
      onStopRequest: () => requestStop('krsi stop'),
    });
  } catch (err) {
    if (err instanceof InputError) throw new CliError(err.message, ExitCode.usage);
    throw new CliError(explainKernelError(err), ExitCode.kernel);
  }
  // Landlock keeps the agent from reading other processes' /proc/PID/exe:
  // the kernel's own snapshot names their executables.
  try {
    ops.enricher?.cache.learnExecutables(agent.processSnapshot());
  } catch (err) {
    log.warn({ err: (err as Error).message }, 'no process snapshot: ancestors of older processes lack their executable');
  }

  let server: { close(): Promise<void> } | null = null;
  if (opts.control) {
    const { startControlServer } = await import('../../control/server.js');
    try {
      server = await startControlServer(agent, {
        path: opts.socket,
        events: ops.hub,
        ...(opts.policy.length > 0 ? { reload: () => loadSources(opts.policy).then((next) => agent.applyPolicies(next)) } : {}),
      });
    } catch (err) {
      agent.shutdown();
      throw new CliError(`cannot serve the control socket: ${(err as Error).message}`, ExitCode.failure);
    }
  }
  if (opts.metrics) {
    try {
      await ops.serveMetrics(() => agent.status(), parseListenAddress(opts.metrics));
    } catch (err) {
      agent.shutdown();
      await server?.close();
      throw new CliError(`cannot serve metrics on ${opts.metrics}: ${(err as Error).message}`, ExitCode.failure);
    }
  }
  const confinement = opts.landlock ? verifyConfinement(writableDirs(opts)) : null;
  agent.setConfinement(confinement);
  write(agent.lifecycleEvent('ready'));
  log.info(
    { programs: agent.programs, generation: agent.status().generation, policies: sources.map((s) => s.source), sinceProcessStartMs: Math.round(process.uptime() * 1000) },
    'running',
  );

  const onHup = (): void => {
    if (opts.policy.length === 0) {
      log.info('SIGHUP: no policy files to reload (the agent was started without --policy)');
      return;
    }
    loadSources(opts.policy)
      .then((next) => agent.applyPolicies(next))
      .then((r) => log.info(r, 'policies reloaded on SIGHUP'))
      .catch((err: Error) => log.error({ err: err.message }, 'SIGHUP reload failed; the policy in force is unchanged'));
  };
  process.on('SIGHUP', onHup);
  process.once('SIGINT', () => requestStop('SIGINT'));
  process.once('SIGTERM', () => requestStop('SIGTERM'));
  // The reader of the event stream went away (`krsi run | head`).
  process.stdout.once('error', (err: NodeJS.ErrnoException) => requestStop(err.code ?? 'stdout error'));

  const reason = await stopped;
  log.info({ reason }, 'stopping');
  process.off('SIGHUP', onHup);
  // Detach first: a `krsi stop` client is told "stopped" when the socket
  // closes, and by then nothing is attached any more.
  const stopping = performance.now();
  const final = agent.shutdown();
  const detachedMs = Math.round(performance.now() - stopping);
  await server?.close();
  if (final && process.stdout.writable) write(final);
  await ops.close();
  log.info({ detachedMs, ms: Math.round(performance.now() - stopping) }, 'stopped');
  return ExitCode.ok;
}

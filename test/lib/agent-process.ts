// Runs `krsi run` as a child process, the way users run it, and reads its
// JSON event stream. Each agent gets its own control socket and list store
// under a temporary directory. Stops it by the pid it started, never by name.
import { spawn, spawnSync, type ChildProcess, type SpawnSyncReturns } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { connectControl } from '../../src/control/client.js';
import { EventSchema, type KrsiEvent } from '../../src/events/schema.js';

/** The krsi command (a shell wrapper), for tests that run it as users do. */
export const krsiBin = fileURLToPath(new URL('../../bin/krsi', import.meta.url));
/** The bundled CLI it runs: `process.execPath krsiCli ...` skips the wrapper's shell. */
export const krsiCli = fileURLToPath(new URL('../../dist/bundle/krsi.js', import.meta.url));

export interface AgentProcess {
  child: ChildProcess;
  events: KrsiEvent[];
  /** Control socket, list store and bpffs pin directory of this agent. */
  socket: string;
  lists: string;
  pinRoot: string;
  stderr: () => string;
  /** Resolves with the first event (already seen or still to come) matching `pred`. */
  waitFor: (pred: (e: KrsiEvent) => boolean, what: string, timeoutMs?: number) => Promise<KrsiEvent>;
  /** Runs a krsi command against this agent's control socket. */
  krsi: (...args: string[]) => SpawnSyncReturns<string>;
  /** `krsi stop` (SIGTERM if that fails), then the exit code. */
  stop: () => Promise<number | null>;
  /** SIGKILL (kill -9; start the agent with --no-protect): no chance to clean up. Resolves with the signal. */
  kill: () => Promise<NodeJS.Signals | null>;
  /** The same agent, seeing only the events that come from now on (a suite's share of a shared agent). */
  view: () => AgentView;
}

/** An agent as one suite sees it: its events start when the view was made; it cannot stop the agent. */
export type AgentView = Omit<AgentProcess, 'stop' | 'kill' | 'view'>;

export interface StartOptions {
  /** Policy files or directories. */
  policies?: string[];
  /** A list store to start from (to test persistence); a fresh one otherwise. */
  lists?: string;
  /** Where the agent pins its state in bpffs; a fresh directory otherwise (give the same one to test adoption). */
  pinRoot?: string;
  args?: string[];
  readyTimeoutMs?: number;
}

/** Writes a policy document (YAML or JSON text) to a temporary file and returns its path. */
export function policyFile(text: string, name = 'policy.yaml'): string {
  const dir = mkdtempSync('/tmp/krsi-policy-');
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

export async function startAgent(opts: StartOptions = {}): Promise<AgentProcess> {
  const dir = mkdtempSync('/tmp/krsi-agent-');
  const socket = join(dir, 'krsi.sock');
  const lists = opts.lists ?? join(dir, 'lists.json');
  const pinRoot = opts.pinRoot ?? `/sys/fs/bpf/krsi-test-${dir.split('-').pop()}`;
  const args = ['run', '--socket', socket, '--lists', lists, '--pin-root', pinRoot, ...(opts.policies ?? []).flatMap((p) => ['--policy', p]), ...(opts.args ?? [])];
  // node runs the script: a checkout under /tmp must not depend on exec
  // from /tmp, which policies under test (hardened.yaml) refuse.
  const child = spawn(process.execPath, [krsiCli, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const events: KrsiEvent[] = [];
  const waiters: Array<{ pred: (e: KrsiEvent) => boolean; resolve: (e: KrsiEvent) => void }> = [];
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const signalled = new Promise<NodeJS.Signals | null>((resolve) => child.once('exit', (_code, signal) => resolve(signal)));

  createInterface({ input: child.stdout! }).on('line', (line) => {
    // Every line must be a schema-valid event: a test fails on anything else.
    const event = EventSchema.parse(JSON.parse(line));
    events.push(event);
    for (const w of [...waiters]) {
      if (w.pred(event)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(event);
      }
    }
  });

  /** The first event from index `from` on that matches. */
  const waitFrom = (from: number, pred: (e: KrsiEvent) => boolean, what: string, timeoutMs = 30_000): Promise<KrsiEvent> => {
    const seen = events.slice(from).find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const recent = events.slice(Math.max(from, events.length - 50));
        reject(new Error(`timed out waiting for ${what}; stderr:\n${err.slice(-8192)}\nthe last ${recent.length} events:\n${recent.map((e) => JSON.stringify(e)).join('\n')}`));
      }, timeoutMs);
      waiters.push({
        pred,
        resolve: (e) => {
          clearTimeout(timer);
          resolve(e);
        },
      });
      void exited.then((code) => {
        clearTimeout(timer);
        reject(new Error(`agent exited (${code}) before ${what}; stderr:\n${err.slice(-8192)}`));
      });
    });
  };
  const waitFor = (pred: (e: KrsiEvent) => boolean, what: string, timeoutMs?: number): Promise<KrsiEvent> => waitFrom(0, pred, what, timeoutMs);

  // An agent starts in 15-20 s under TCG on a quiet machine (verifying its
  // programs is most of it); on a machine loaded several times over (other
  // VMs beside this one) it took 80 s and more. The deadline is for a
  // start that never comes, not a speed bound.
  await waitFor((e) => e.kind === 'agent' && e.state === 'ready', 'the agent to be ready', opts.readyTimeoutMs ?? 240_000);

  const krsi = (...cmd: string[]): SpawnSyncReturns<string> =>
    spawnSync(process.execPath, [krsiCli, ...cmd], { encoding: 'utf8', env: { ...process.env, KRSI_SOCKET: socket }, timeout: 120_000 });

  // A protected agent ignores signals from other processes: a stop request
  // over the control socket is the way to stop it. Sent from this process,
  // not by running `krsi stop`: a policy under test may refuse what the CLI
  // needs (hardened.yaml refuses libraries mapped from /tmp, where a
  // checkout, and so the native binding, may be).
  const stop = async (): Promise<number | null> => {
    if (child.exitCode === null && child.signalCode === null) {
      let asked: string | null = null;
      try {
        const control = await connectControl(socket);
        await control.stop({ timeoutMs: 60_000 });
      } catch (err) {
        asked = (err as Error).message;
      }
      if (asked !== null && child.exitCode === null && child.signalCode === null) {
        // A protected agent refuses the signal: say why the stop failed.
        try {
          child.kill('SIGTERM');
        } catch (err) {
          throw new Error(`the stop request failed (${asked}) and SIGTERM was refused: ${(err as Error).message}`);
        }
      }
    }
    return exited;
  };
  const kill = async (): Promise<NodeJS.Signals | null> => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    return signalled;
  };
  const view = (): AgentView => {
    const from = events.length;
    return {
      child,
      get events() {
        return events.slice(from);
      },
      socket,
      lists,
      pinRoot,
      stderr: () => err,
      waitFor: (pred, what, timeoutMs) => waitFrom(from, pred, what, timeoutMs),
      krsi,
    };
  };
  return { child, events, socket, lists, pinRoot, stderr: () => err, waitFor, krsi, stop, kill, view };
}

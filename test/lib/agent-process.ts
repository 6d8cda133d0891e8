// Runs `krsi run` as a child process, the way users run it, and reads its
// JSON event stream. Stops it by the pid it started, never by name.
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { EventSchema, type KrsiEvent } from '../../src/events/schema.js';

export const krsiBin = fileURLToPath(new URL('../../bin/krsi', import.meta.url));

export interface AgentProcess {
  child: ChildProcess;
  events: KrsiEvent[];
  stderr: () => string;
  /** Resolves with the first event (already seen or still to come) matching `pred`. */
  waitFor: (pred: (e: KrsiEvent) => boolean, what: string, timeoutMs?: number) => Promise<KrsiEvent>;
  /** SIGTERM, then the exit code. */
  stop: () => Promise<number | null>;
}

export async function startAgent(args: readonly string[], readyTimeoutMs = 60_000): Promise<AgentProcess> {
  const child = spawn(krsiBin, ['run', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const events: KrsiEvent[] = [];
  const waiters: Array<{ pred: (e: KrsiEvent) => boolean; resolve: (e: KrsiEvent) => void }> = [];
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));

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

  const waitFor = (pred: (e: KrsiEvent) => boolean, what: string, timeoutMs = 30_000): Promise<KrsiEvent> => {
    const seen = events.find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new Error(`timed out waiting for ${what}; stderr:\n${err}\nevents:\n${events.map((e) => JSON.stringify(e)).join('\n')}`));
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
        reject(new Error(`agent exited (${code}) before ${what}; stderr:\n${err}`));
      });
    });
  };

  await waitFor((e) => e.kind === 'agent' && e.state === 'ready', 'the agent to be ready', readyTimeoutMs);

  const stop = async (): Promise<number | null> => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    return exited;
  };
  return { child, events, stderr: () => err, waitFor, stop };
}

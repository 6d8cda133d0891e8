// One agent for the suites that need nothing but its usual flags. Each suite
// applies its own policies over the control socket (a generation swap, as a
// user changes policy) instead of starting an agent of its own, which under
// emulation costs two node starts and ~15 s of verification of every
// program. The first suite to ask starts it; test/vm/shared-agent.test.ts,
// run after those suites, stops it and checks its exit and accounting.
//
// It runs with --no-protect: a protected agent refuses every other process's
// LSM program loads, and suites start agents of their own (the reactions
// suite one in its own process, through the library API). Self-protection
// has suites of its own (self-protection, tamper).
//
// A suite sees the events from when it joined (AgentView) and leaves nothing
// in force: leave() applies an empty policy. What cannot be undone stays:
// once a suite reaches the lock point (modules-mounts), the afterLockPoint
// rules of every later policy are in force from the start (no other suite
// has any).
import assert from 'node:assert/strict';
import { after } from 'node:test';
import { connectControl, type ControlClient } from '../../src/control/client.js';
import type { AgentEvent, HookCounters } from '../../src/events/schema.js';
import { startAgent, type AgentProcess, type AgentView } from './agent-process.js';

/**
 * The environment variables the shared agent records: the default three, and
 * one that only the signals suite sets (test/vm/signals.test.ts).
 */
export const SHARED_ENV_RECORD = ['LD_PRELOAD', 'LD_AUDIT', 'LD_LIBRARY_PATH', 'KRSI_ASKED'] as const;

let shared: Promise<AgentProcess> | null = null;

export interface SuiteAgent {
  agent: AgentView;
  control: ControlClient;
  /** Per-hook kernel counters since the suite joined. */
  countersSince(): Promise<Record<string, HookCounters>>;
  /** Applies an empty policy (nothing of this suite stays in force) and closes the control connection. */
  leave(): Promise<void>;
}

const ZERO: HookCounters = { seen: 0, denied: 0, emitted: 0, dropped: 0, rate_limited: 0 };

export async function joinSharedAgent(): Promise<SuiteAgent> {
  shared ??= startAgent({ args: ['--no-protect', ...SHARED_ENV_RECORD.flatMap((name) => ['--env-record', name])] });
  const process = await shared;
  const agent = process.view();
  const control = await connectControl(process.socket);
  const start = (await control.status()).counters;
  return {
    agent,
    control,
    countersSince: async () => {
      const now = (await control.status()).counters;
      const out: Record<string, HookCounters> = {};
      for (const [hook, c] of Object.entries(now)) {
        const s = start[hook] ?? ZERO;
        out[hook] = {
          seen: c.seen - s.seen,
          denied: c.denied - s.denied,
          emitted: c.emitted - s.emitted,
          dropped: c.dropped - s.dropped,
          rate_limited: c.rate_limited - s.rate_limited,
        };
      }
      return out;
    },
    leave: async () => {
      try {
        await control.applyPolicies([]);
      } finally {
        control.close();
      }
    },
  };
}

/** Whether a suite started the shared agent (and it has not been stopped). */
export const sharedAgentRunning = (): boolean => shared !== null;

/**
 * Stops the shared agent; returns its stopped event once its exit code (0)
 * and the kernel's counters (nothing lost, every emitted record received)
 * are checked.
 */
export async function stopSharedAgent(): Promise<AgentEvent> {
  assert.ok(shared, 'no suite started the shared agent');
  const agent = await shared;
  shared = null;
  assert.equal(await agent.stop(), 0, agent.stderr());
  const stopped = agent.events.at(-1);
  assert.ok(stopped?.kind === 'agent' && stopped.state === 'stopped', 'the shared agent reported its stop');
  const hooks = Object.values(stopped.counters);
  assert.equal(hooks.reduce((n, h) => n + h.dropped, 0), 0, 'the shared agent lost no record');
  assert.equal(stopped.received, hooks.reduce((n, h) => n + h.emitted, 0), 'it received every record its programs emitted');
  return stopped;
}

// A suite run on its own (not in the whole run) leaves no agent behind.
after(async () => {
  if (shared) await (await shared).stop();
});

// Waiting for the stream to catch up, instead of sleeping: the agent has
// read every record its programs wrote once nothing is pending on either
// ring (status over the control socket); its events reached stdout before
// it answered, and one more round trip lets this process read them.
import type { AgentStatus } from '../../src/agent/control-api.js';
import type { ControlClient } from '../../src/control/client.js';

/** Resolves with the status once nothing is pending; throws after deadlineMs. */
export async function settled(control: ControlClient, deadlineMs = 60_000): Promise<AgentStatus> {
  const deadline = Date.now() + deadlineMs;
  for (;;) {
    const { accounting } = await control.status();
    if (accounting.decisions.pending === 0 && accounting.events.pending === 0) return control.status();
    if (Date.now() > deadline) throw new Error(`the agent still had records pending after ${deadlineMs / 1000} s: ${JSON.stringify(accounting)}`);
    await new Promise((r) => setTimeout(r, 50)); // the poll's period
  }
}

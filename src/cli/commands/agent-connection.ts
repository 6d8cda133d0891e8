// What the commands that talk to a running agent share: the --socket option,
// connecting, and turning the agent's errors into one line and an exit code.
import { Option, type Command } from 'commander';
import type { ControlClient } from '../../control/client.js';
import { DEFAULT_SOCKET_PATH } from '../../control/socket-path.js';
import { CliError, ExitCode } from '../exit-codes.js';

export interface SocketOptions {
  socket: string;
}

export function addSocketOption(command: Command): Command {
  return command.addOption(
    new Option('--socket <path>', "the agent's control socket").env('KRSI_SOCKET').default(DEFAULT_SOCKET_PATH),
  );
}

/** Connects to the agent, runs `fn`, disconnects; the agent's errors become CliErrors. */
export async function withAgent<T>(socket: string, fn: (client: ControlClient) => Promise<T>): Promise<T> {
  const { connectControl } = await import('../../control/client.js');
  let client: ControlClient;
  try {
    client = await connectControl(socket);
  } catch (err) {
    throw await toCliError(err);
  }
  try {
    return await fn(client);
  } catch (err) {
    throw await toCliError(err);
  } finally {
    client.close();
  }
}

async function toCliError(err: unknown): Promise<unknown> {
  const { AgentUnavailableError, ControlError } = await import('../../control/client.js');
  if (err instanceof AgentUnavailableError) return new CliError(err.message, ExitCode.failure);
  if (err instanceof ControlError) {
    switch (err.code) {
      case 'input':
        // Bad input: the agent changed nothing.
        return new CliError(err.message, ExitCode.usage);
      case 'denied':
        return new CliError(err.message, ExitCode.failure);
      case 'unknown-method':
        return new CliError(`the agent does not understand this request (is it an older krsi?): ${err.message}`, ExitCode.failure);
      case 'internal':
        return new CliError(`the agent failed: ${err.message}`, ExitCode.failure);
    }
  }
  return err;
}

/** Writes `text` and a newline to stdout. */
export function out(text: string): void {
  process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
}

/** JSON for output: bigints as decimal strings, indented. */
export function json(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v), 2);
}

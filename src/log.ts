// Diagnostics go to stderr through pino; the event stream owns stdout.
// Keeping the two apart is what lets `krsi run | jq` work while the agent
// still reports what it is doing.
import { pino, type Logger, type LevelWithSilent } from 'pino';

function levelFromEnv(): LevelWithSilent {
  const raw = process.env['KRSI_LOG_LEVEL'];
  const allowed: LevelWithSilent[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];
  return allowed.find((l) => l === raw) ?? 'info';
}

export const log: Logger = pino(
  {
    name: 'krsi',
    level: levelFromEnv(),
    base: { pid: process.pid },
  },
  pino.destination({ fd: 2, sync: true }),
);

export function setLogLevel(level: LevelWithSilent): void {
  log.level = level;
}

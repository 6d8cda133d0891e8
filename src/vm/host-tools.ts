// The host programs the VM harness runs (apt-get, dpkg-deb, depmod, xz, qemu),
// found and spawned in one place so that a missing one always produces the
// same clear error: which tool, and which Debian package provides it.
import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { CliError, ExitCode } from '../cli/exit-codes.js';

/** The Debian package that provides each host tool the harness needs. */
export const DEBIAN_PACKAGE_OF_TOOL = {
  'qemu-system-x86_64': 'qemu-system-x86',
  'apt-get': 'apt',
  'apt-cache': 'apt',
  'dpkg-deb': 'dpkg',
  depmod: 'kmod',
  xz: 'xz-utils',
  zstd: 'zstd',
} as const;
export type HostTool = keyof typeof DEBIAN_PACKAGE_OF_TOOL;

// depmod lives in /usr/sbin, which a non-root PATH often lacks.
const EXTRA_SEARCH_DIRS = ['/usr/local/sbin', '/usr/sbin', '/sbin'];

export function missingDependency(what: string, debianPackage: string): CliError {
  return new CliError(
    `${what} is missing; install the Debian package ${debianPackage} (apt-get install ${debianPackage})`,
    ExitCode.missingDependency,
  );
}

/** Absolute path of an executable named `name`, or undefined. */
export function findExecutable(name: string): string | undefined {
  const dirs = (process.env['PATH'] ?? '').split(delimiter).filter((d) => d !== '');
  for (const dir of [...dirs, ...EXTRA_SEARCH_DIRS]) {
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here; keep looking
    }
  }
  return undefined;
}

export function requireTool(tool: HostTool): string {
  const found = findExecutable(tool);
  if (found === undefined) {
    throw missingDependency(`${tool}`, DEBIAN_PACKAGE_OF_TOOL[tool]);
  }
  return found;
}

export interface ToolResult {
  readonly code: number;
  readonly stdout: Buffer;
  readonly stderr: string;
}

export interface RunToolOptions {
  readonly cwd?: string;
  /** Written to the tool's stdin (otherwise stdin is /dev/null). */
  readonly input?: Uint8Array;
  /** Resolve with a non-zero code instead of rejecting. */
  readonly allowFailure?: boolean;
  readonly env?: NodeJS.ProcessEnv;
}

export async function runToolWithInput(tool: HostTool, args: readonly string[], input: Uint8Array): Promise<ToolResult> {
  return runTool(tool, args, { input });
}

/** Runs a host tool to completion, collecting its output. */
export async function runTool(
  tool: HostTool,
  args: readonly string[],
  options: RunToolOptions = {},
): Promise<ToolResult> {
  const executable = requireTool(tool);
  const result = await new Promise<ToolResult>((resolve, reject) => {
    const child = spawn(executable, [...args], {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    if (options.input !== undefined && child.stdin !== null) {
      // A tool that exits early closes its stdin; its exit code tells what went wrong.
      child.stdin.on('error', () => {});
      child.stdin.end(options.input);
    }
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    child.stdout?.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr?.on('data', (chunk: Buffer) => stderr.push(chunk));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      resolve({
        code: code ?? (signal === null ? 1 : 128),
        stdout: Buffer.concat(stdout),
        stderr: Buffer.concat(stderr).toString('utf8'),
      });
    });
  });
  if (result.code !== 0 && options.allowFailure !== true) {
    const detail = result.stderr.trim().split('\n').slice(-5).join('\n');
    throw new CliError(`${tool} ${args.join(' ')} failed (exit ${result.code})${detail ? `:\n${detail}` : ''}`);
  }
  return result;
}

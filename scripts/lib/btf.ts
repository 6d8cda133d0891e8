// Reads integer constants from a C header (through clang's macro dump), and
// the struct names it declares: build-time tooling for the ABI generator and
// the test that keeps it honest. Layouts come from the object's BTF
// (src/abi/layouts.ts).
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

export type { FieldLayout, FieldType, ScalarKind, StructLayout } from '../../src/abi/layouts.js';

/** The structs a header declares (`struct name {` at the start of a line). */
export function headerStructs(headerPath: string): string[] {
  return [...readFileSync(headerPath, 'utf8').matchAll(/^struct (\w+) \{/gm)].map((m) => m[1]!).sort();
}

/**
 * Integer #defines whose names start with `prefix`, evaluated by clang
 * itself (a macro like `(1 << 3)` or `(A + 2 * B)` comes back as a number).
 */
export function readHeaderConstants(headerPath: string, prefix: string, includeDirs: readonly string[] = []): Map<string, number> {
  const names = execFileSync('clang', ['-dM', '-E', '-x', 'c', ...includeDirs.map((d) => `-I${d}`), headerPath], {
    encoding: 'utf8',
  })
    .split('\n')
    .map((line) => /^#define (\w+) (.+)$/.exec(line))
    .filter((m): m is RegExpExecArray => m !== null && m[1]!.startsWith(prefix) && !m[1]!.endsWith('_H'))
    .map((m) => m[1]!)
    .sort();
  if (names.length === 0) return new Map();
  // Let the compiler evaluate each one: an enum initialiser must be an
  // integer constant expression, so anything else fails loudly here.
  const probe = [
    `#include "${headerPath}"`,
    ...names.map((n) => `long long __value_${n} = ${n};`),
  ].join('\n');
  const asm = execFileSync('clang', ['-x', 'c', '-S', '-O0', '-o', '-', ...includeDirs.map((d) => `-I${d}`), '-'], {
    input: probe,
    encoding: 'utf8',
  });
  const values = new Map<string, number>();
  for (const name of names) {
    const re = new RegExp(`^__value_${name}:\\s*\\n\\s*\\.quad\\s+(-?\\d+)`, 'm');
    const m = re.exec(asm);
    if (!m) throw new Error(`constant ${name} is not an integer constant expression`);
    values.set(name, Number(m[1]));
  }
  return values;
}

// funcParamCount walks raw BTF: a synthetic one here, the host kernel's when it has one.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { test } from 'node:test';
import { funcParamCount, kernelFuncParamCount } from '../../src/bpf/btf.js';

/** BTF of: [1] INT int, [2] STRUCT s {a}, [3] FUNC_PROTO (int, int, int), [4] FUNC f, [5] FUNC g -> [6] FUNC_PROTO (int). */
function btf(): Buffer {
  const strings = Buffer.from('\0int\0s\0a\0f\0g\0x\0', 'latin1');
  const str = (name: string): number => strings.indexOf(`\0${name}\0`) + 1;
  const words: number[] = [];
  const type = (name: number, kind: number, vlen: number, sizeOrType: number, ...extra: number[]): void => {
    words.push(name, (kind << 24) | vlen, sizeOrType, ...extra);
  };
  type(str('int'), 1, 0, 4, 0x01000020);
  type(str('s'), 4, 1, 4, str('a'), 1, 0);
  type(0, 13, 3, 1, str('x'), 1, str('x'), 1, str('x'), 1);
  type(str('f'), 12, 1, 3);
  type(str('g'), 12, 1, 6);
  type(0, 13, 1, 1, str('x'), 1);
  const types = Buffer.alloc(words.length * 4);
  words.forEach((w, i) => types.writeUInt32LE(w >>> 0, i * 4));
  const hdr = Buffer.alloc(24);
  hdr.writeUInt16LE(0xeb9f, 0);
  hdr.writeUInt8(1, 2);
  hdr.writeUInt32LE(24, 4);
  hdr.writeUInt32LE(0, 8);
  hdr.writeUInt32LE(types.length, 12);
  hdr.writeUInt32LE(types.length, 16);
  hdr.writeUInt32LE(strings.length, 20);
  return Buffer.concat([hdr, types, strings]);
}

test('the parameters of a BTF function, its prototype before or after it', () => {
  assert.equal(funcParamCount(btf(), 'f'), 3);
  assert.equal(funcParamCount(btf(), 'g'), 1);
  assert.equal(funcParamCount(btf(), 's'), undefined, 'a struct is no function');
  assert.equal(funcParamCount(btf(), 'missing'), undefined);
  assert.equal(funcParamCount(Buffer.from('not btf at all, not at all'), 'f'), undefined);
});

test('the running kernel: bpf_lsm_file_open takes one argument', { skip: !existsSync('/sys/kernel/btf/vmlinux') && 'no kernel BTF' }, () => {
  assert.equal(kernelFuncParamCount('bpf_lsm_file_open'), 1);
  const bpf = kernelFuncParamCount('bpf_lsm_bpf');
  assert.ok(bpf === 3 || bpf === 4, `bpf_lsm_bpf takes ${bpf}`);
});

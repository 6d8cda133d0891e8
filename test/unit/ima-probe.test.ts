// kernelHasImaFileHash reads the kernel's BTF string table: the helper's
// function name, NUL-delimited, says the kernel has it.
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { kernelHasImaFileHash } from '../../src/agent/content-hasher.js';

test('bpf_ima_file_hash is found by its exact name in the BTF strings, and only so', () => {
  const dir = mkdtempSync(join(tmpdir(), 'krsi-btf-'));
  const btf = (name: string, strings: string): string => {
    const path = join(dir, name);
    writeFileSync(path, Buffer.concat([Buffer.from([0x9f, 0xeb, 1, 0]), Buffer.from(`\0${strings}\0`)]));
    return path;
  };
  assert.equal(kernelHasImaFileHash(btf('with', 'bpf_loop\0bpf_ima_file_hash\0bpf_d_path')), true);
  assert.equal(kernelHasImaFileHash(btf('inode-only', 'bpf_ima_inode_hash\0bpf_ima_file_hash_x')), false);
  assert.equal(kernelHasImaFileHash(join(dir, 'missing')), false, 'no BTF: no helper assumed');
});

/* SPDX-License-Identifier: GPL-2.0 */
/*
 * SHA-256 (FIPS 180-4) of a kernel buffer, in BPF.
 *
 * The kernel offers BPF a digest of a file (IMA's bpf_ima_file_hash, which
 * needs a sleepable program and a file) but none of a buffer.  A module
 * loaded by init_module(2) is only a buffer, so its digest is computed here:
 * one bpf_loop() iteration per 64-byte block, reading the block with
 * bpf_probe_read_kernel().  The state lives in a per-CPU map, so the caller
 * must not sleep (a non-sleepable program) while it hashes.
 *
 * Cost: about 2,000 BPF instructions per block, JIT-compiled; a 1 MiB image
 * is 16,384 blocks.  Buffers longer than SHA256_MAX_BYTES (bpf_loop's limit
 * of 1 << 23 iterations) are not hashed.
 */
#ifndef KRSI_SHA256_H
#define KRSI_SHA256_H

#include "common.h"

#define SHA256_MAX_BYTES ((1ULL << 23) * 64 - 128)

struct sha256_ctx {
	__u32 h[8];
	__u32 w[64];
	__u8 block[64];
	const __u8 *data;	/* kernel memory */
	__u64 len;
	__u64 full;		/* complete 64-byte blocks of data */
	__u64 blocks;		/* blocks to compress, padding included */
	__u32 failed;
	__u32 __pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sha256_ctx);
} sha256_scratch SEC(".maps");

static const __u32 sha256_k[64] = {
	0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
	0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
	0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
	0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
	0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
	0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
	0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
	0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

static __always_inline __u32 ror32(__u32 x, int n)
{
	return (x >> n) | (x << (32 - n));
}

/* Fills c->block with block i of the message, padding included; 0 on success. */
static __always_inline int sha256_fill(struct sha256_ctx *c, __u64 i)
{
	__u64 rem, bits;
	int j;

	if (i < c->full)
		return bpf_probe_read_kernel(c->block, 64, c->data + i * 64) ? -1 : 0;
	__builtin_memset(c->block, 0, sizeof(c->block));
	rem = c->len & 63;
	if (i == c->full) {
		barrier_var(rem);
		if (rem > 63)
			return -1;
		if (rem && bpf_probe_read_kernel(c->block, rem, c->data + i * 64))
			return -1;
		c->block[rem & 63] = 0x80;
		if (rem >= 56)
			return 0;	/* the length goes in one more block */
	}
	bits = c->len * 8;
	for (j = 0; j < 8; j++)
		c->block[56 + j] = bits >> (56 - 8 * j);
	return 0;
}

/* bpf_loop()'s context must be on the stack: it carries the map value. */
struct sha256_walk {
	struct sha256_ctx *c;
};

static long sha256_step(__u32 i, void *ctx)
{
	struct sha256_ctx *c = ((struct sha256_walk *)ctx)->c;
	__u32 a, b, cc, d, e, f, g, h, t1, t2, s0, s1;
	int t;

	if (i >= c->blocks)
		return 1;
	if (sha256_fill(c, i)) {
		c->failed = 1;
		return 1;
	}
	for (t = 0; t < 16; t++)
		c->w[t] = (__u32)c->block[4 * t] << 24 | (__u32)c->block[4 * t + 1] << 16 |
			  (__u32)c->block[4 * t + 2] << 8 | c->block[4 * t + 3];
	for (t = 16; t < 64; t++) {
		s0 = ror32(c->w[t - 15], 7) ^ ror32(c->w[t - 15], 18) ^ (c->w[t - 15] >> 3);
		s1 = ror32(c->w[t - 2], 17) ^ ror32(c->w[t - 2], 19) ^ (c->w[t - 2] >> 10);
		c->w[t] = c->w[t - 16] + s0 + c->w[t - 7] + s1;
	}
	a = c->h[0];
	b = c->h[1];
	cc = c->h[2];
	d = c->h[3];
	e = c->h[4];
	f = c->h[5];
	g = c->h[6];
	h = c->h[7];
	for (t = 0; t < 64; t++) {
		s1 = ror32(e, 6) ^ ror32(e, 11) ^ ror32(e, 25);
		t1 = h + s1 + ((e & f) ^ (~e & g)) + sha256_k[t] + c->w[t];
		s0 = ror32(a, 2) ^ ror32(a, 13) ^ ror32(a, 22);
		t2 = s0 + ((a & b) ^ (a & cc) ^ (b & cc));
		h = g;
		g = f;
		f = e;
		e = d + t1;
		d = cc;
		cc = b;
		b = a;
		a = t1 + t2;
	}
	c->h[0] += a;
	c->h[1] += b;
	c->h[2] += cc;
	c->h[3] += d;
	c->h[4] += e;
	c->h[5] += f;
	c->h[6] += g;
	c->h[7] += h;
	return 0;
}

/*
 * The SHA-256 digest of len bytes of kernel memory at data, into out (32
 * bytes, the usual big-endian byte order); 0 on success.
 */
static __always_inline int sha256_kernel(const void *data, __u64 len, __u8 *out)
{
	struct sha256_walk walk;
	struct sha256_ctx *c;
	__u32 zero = 0;
	int j;

	if (len > SHA256_MAX_BYTES)
		return -1;
	c = bpf_map_lookup_elem(&sha256_scratch, &zero);
	if (!c)
		return -1;
	c->h[0] = 0x6a09e667;
	c->h[1] = 0xbb67ae85;
	c->h[2] = 0x3c6ef372;
	c->h[3] = 0xa54ff53a;
	c->h[4] = 0x510e527f;
	c->h[5] = 0x9b05688c;
	c->h[6] = 0x1f83d9ab;
	c->h[7] = 0x5be0cd19;
	c->data = data;
	c->len = len;
	c->full = len / 64;
	c->blocks = c->full + ((len & 63) < 56 ? 1 : 2);
	c->failed = 0;
	walk.c = c;
	if (bpf_loop(c->blocks, sha256_step, &walk, 0) != (long)c->blocks || c->failed)
		return -1;
	for (j = 0; j < 8; j++) {
		out[4 * j] = c->h[j] >> 24;
		out[4 * j + 1] = c->h[j] >> 16;
		out[4 * j + 2] = c->h[j] >> 8;
		out[4 * j + 3] = c->h[j];
	}
	return 0;
}

#endif /* KRSI_SHA256_H */

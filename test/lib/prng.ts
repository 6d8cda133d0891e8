// mulberry32: a small seeded PRNG, the same sequence everywhere for a seed,
// so that a randomised test that fails can be replayed. The benchmarks'
// shuffles use the same one.
export { prng } from '../../src/bench/stats.js';

// Entry point of the krsi command (bin/krsi runs it on the pinned runtime).
import { main } from './main.js';

process.title = 'krsi';
process.exitCode = await main(process.argv.slice(2));

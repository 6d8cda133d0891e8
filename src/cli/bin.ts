// Entry point of the krsi command (bin/krsi runs its bundle, dist/bundle/krsi.js).
import { main } from './main.js';

process.title = 'krsi';
process.exitCode = await main(process.argv.slice(2));

// Files of the checkout, found from the package root (src/paths.ts), so that
// a test finds them whether it runs from test/ (tsx) or bundled (build/test-vm).
import { packageRoot } from '../../src/paths.js';

export const repoPath = (relative: string): string => `${packageRoot}${relative}`;

// A FlowRunner thread in a checkout run through tsx (tests, benchmarks): a worker does not inherit the loader
// that lets its parent import TypeScript, so this plain module loads thread-worker.ts through tsx's API.
// Compiled builds start thread-worker.js directly.
import { tsImport } from 'tsx/esm/api';

await tsImport(new URL('./thread-worker.ts', import.meta.url).href, import.meta.url);

// Builds the web console into dist/ui, served by the agent at /ui/ (services/runtime-agent/src/http/routes/console.ts).
// Everything is bundled: the page loads nothing from any other origin, and no inline script or style is emitted,
// so the strict Content-Security-Policy the agent sends holds.
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const root = fileURLToPath(new URL('.', import.meta.url));

export default defineConfig({
  root,
  base: '/ui/',
  logLevel: 'warn',
  publicDir: false,
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  build: {
    outDir: fileURLToPath(new URL('../../../dist/ui', import.meta.url)),
    emptyOutDir: true,
    assetsDir: 'assets',
    // The polyfill would be inline code; every browser the console supports preloads modules itself.
    modulePreload: { polyfill: false },
    // Inlined assets would be data: URLs in styles: keep every asset a file.
    assetsInlineLimit: 0,
    sourcemap: false,
    target: 'es2022',
  },
});

/**
 * GET /ui/: the web console, the files `npm run build` writes to dist/ui (services/runtime-agent/ui). They
 * hold no data: every piece of data comes from the API with the caller's own token, so the files are
 * served to anyone the browser guard lets through. Each answer carries a Content-Security-Policy that
 * allows only the agent's own scripts, styles and API, no inline code of any kind, and no framing.
 */
import { readFileSync } from 'node:fs';
import { extname, join } from 'node:path';
import type { Router } from '@koa/router';
import type { Context } from 'koa';
import { AgentError } from '../../../../../adapters/errors.js';
import { REPO_ROOT } from '../../paths.js';
import type { RouteDoc } from '../openapi.js';
import { ErrorBody } from '../schemas.js';

export const CONSOLE_DIR = join(REPO_ROOT, 'dist/ui');

export const CONSOLE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "font-src 'self'",
  "manifest-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/** Built file names: Vite's `name-hash.ext` under assets/, nothing that could climb out of the folder. */
const ASSET = /^[A-Za-z0-9_-]{1,100}\.(?:js|css|svg|png|woff2)$/;

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.woff2': 'font/woff2',
};

export const consoleRouteDocs: RouteDoc[] = [
  {
    method: 'get',
    path: '/ui',
    summary: 'Redirects to /ui/, so that the page finds its files',
    responses: { 308: { description: 'to /ui/', contentType: 'text/plain' } },
  },
  {
    method: 'get',
    path: '/ui/',
    summary: 'The web console (docs/console.md); it signs in with a bearer token kept in the tab',
    responses: {
      200: { description: 'the page (Cache-Control: no-cache)', contentType: 'text/html' },
      404: { description: 'the console is not built (npm run build)', schema: ErrorBody },
    },
  },
  {
    method: 'get',
    path: '/ui/assets/:file',
    summary: "The console's scripts and styles, named by their content's hash (cached for a year)",
    responses: {
      200: { description: 'the file', contentType: 'text/javascript' },
      404: { description: 'no such file', schema: ErrorBody },
    },
  },
];

/** Files read once: they change only with a new build, which comes with a restart. */
const cache = new Map<string, Buffer>();

function read(path: string): Buffer | undefined {
  let body = cache.get(path);
  if (body === undefined) {
    try {
      body = readFileSync(path);
    } catch {
      return undefined;
    }
    cache.set(path, body);
  }
  return body;
}

function secure(ctx: Context): void {
  ctx.set('Content-Security-Policy', CONSOLE_CSP);
  ctx.set('X-Content-Type-Options', 'nosniff');
  ctx.set('Referrer-Policy', 'no-referrer');
  ctx.set('X-Frame-Options', 'DENY');
  ctx.set('Cross-Origin-Opener-Policy', 'same-origin');
  ctx.set('Cross-Origin-Resource-Policy', 'same-origin');
}

export function mountConsoleRoutes(router: Router, dir = CONSOLE_DIR): void {
  // This route also matches /ui/ (a trailing slash is optional): that one goes on to the page.
  router.get('/ui', (ctx, next) => {
    if (ctx.path !== '/ui') return next();
    ctx.status = 308;
    ctx.set('Location', '/ui/');
    ctx.type = 'text/plain';
    ctx.body = 'the console is at /ui/';
  });

  router.get('/ui/', (ctx) => {
    const body = read(join(dir, 'index.html'));
    if (!body)
      throw new AgentError('not_found', 'the console is not built: run npm run build (npm start builds it too)');
    secure(ctx);
    ctx.set('Cache-Control', 'no-cache');
    ctx.type = TYPES['.html'];
    ctx.body = body;
  });

  router.get('/ui/assets/:file', (ctx) => {
    const file = ctx.params.file;
    const body = ASSET.test(file) ? read(join(dir, 'assets', file)) : undefined;
    if (!body) throw new AgentError('not_found', `no console file ${file.slice(0, 100)}`);
    secure(ctx);
    ctx.set('Cache-Control', 'public, max-age=31536000, immutable');
    ctx.type = TYPES[extname(file)] ?? 'application/octet-stream';
    ctx.body = body;
  });
}

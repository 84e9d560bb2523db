/**
 * Preload (node --import) that writes every module the process loads to the file named by
 * MODULE_TRACE_FILE, one URL a line, as it loads: a test reads which packages a running agent holds.
 * ES modules are seen by a loader hook (module-trace-hooks.mjs, on the loader's thread); CommonJS
 * modules required by other CommonJS code, or by createRequire, by wrapping Module.prototype.require.
 */
import { appendFileSync } from 'node:fs';
import Module, { isBuiltin, register } from 'node:module';
import { pathToFileURL } from 'node:url';

const file = process.env.MODULE_TRACE_FILE;
if (file) {
  register('./module-trace-hooks.mjs', import.meta.url, { data: { file } });
  const require = Module.prototype.require;
  Module.prototype.require = function traced(id) {
    const exports = require.call(this, id);
    if (!isBuiltin(id)) appendFileSync(file, `${pathToFileURL(Module._resolveFilename(id, this)).href}\n`);
    return exports;
  };
}

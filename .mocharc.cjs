// Mocha adds a config file's `spec` to the spec paths given on the command line, so the whole suite is
// named here only when the command line names none: `npx mocha` and `npm test` run every spec, and
// `npx mocha tests/specs/http/config.spec.ts` (or `--spec ...`) runs just that file. The command line is
// read with mocha's own option table, so an option's value (`--grep config`) is not taken for a path.
'use strict';

const parse = require('yargs-parser');
const { aliases, types } = require('mocha/lib/cli/run-option-metadata');

const withValue = [...types.array, ...types.string, ...types.number];
const args = parse(process.argv.slice(2), {
  configuration: { 'camel-case-expansion': false, 'dot-notation': false, 'short-option-groups': false },
  alias: aliases,
  boolean: types.boolean,
  narg: Object.fromEntries(withValue.map((option) => [option, 1])),
  string: withValue,
});
const named = args._.length > 0 || args.spec !== undefined;

module.exports = {
  'node-option': ['import=tsx'],
  ...(named ? {} : { spec: ['tests/specs/**/*.spec.ts'] }),
  timeout: 20000,
  exit: true,
};

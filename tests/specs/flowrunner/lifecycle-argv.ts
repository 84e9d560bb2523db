/** Lifecycle commands for the container-control specs, as argv run through node: no shell anywhere. */

/** An argv that appends `word` and a newline to `file`. */
export const append = (file: string, word: string) => [
  process.execPath,
  '-e',
  'require("fs").appendFileSync(process.argv[1], process.argv[2] + "\\n")',
  file,
  word,
];

/** An argv that prints to stdout and stderr, then exits 3. */
export const FAIL = [
  process.execPath,
  '-e',
  'console.log("checking limits"); console.error("somaxconn: permission denied"); process.exit(3)',
];

/** The `runtime-agent` command (bin/runtime-agent.mjs runs the compiled form): errors are one line on stderr. */
import { CliError, EXIT } from './client.js';
import { main } from './cli.js';

// A reader that went away (`runtime-agent events | head`) is not an error of the command: stop quietly.
// (`serve` is the agent, which handles its own output.)
if (process.argv[2] !== 'serve') {
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(process.exitCode ?? EXIT.ok);
    process.stderr.write(`runtime-agent: cannot write the output: ${err.message}\n`);
    process.exit(EXIT.failed);
  });
}

try {
  const code = await main(process.argv.slice(2));
  if (code >= 0) process.exitCode = code;
} catch (err) {
  if (err instanceof CliError) {
    process.stderr.write(`runtime-agent: ${err.message}\n`);
    process.exitCode = err.code;
  } else {
    process.stderr.write(`runtime-agent: unexpected error: ${(err as Error)?.message ?? String(err)}\n`);
    process.exitCode = EXIT.failed;
  }
}

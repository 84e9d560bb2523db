/** The `runtime-agent` command (bin/runtime-agent.mjs runs the compiled form): errors are one line on stderr. */
import { CliError, EXIT } from './client.js';
import { main } from './cli.js';

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

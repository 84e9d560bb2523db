import { type StepContext, USE_EXAMPLE_OUTPUT } from '../contract.js';
import type { EgressPolicy } from '../shared/egress.js';
import { dryRunLines, renderRequest } from './render.js';
import type { RequestInput } from './request-schema.js';

/** `request` in a dry run: checks and logs the request it would send, which it does not. */
export function dryRun(ctx: StepContext, input: RequestInput, policy: EgressPolicy): typeof USE_EXAMPLE_OUTPUT {
  const rendered = renderRequest(input);
  for (const line of dryRunLines(input, rendered)) ctx.log.info(line);
  // A warning, not a failure: the host may be a dry-run placeholder, and DNS is not asked.
  try {
    policy.checkHost(rendered.url.hostname);
  } catch (err) {
    ctx.log.warn(`dry run: the run would fail: ${(err as Error).message}`);
  }
  // The engine fills in the example output; extracted values stay unknown, and templates that read
  // them render as visible dry-run placeholders.
  return USE_EXAMPLE_OUTPUT;
}

/** The dry-run plan of a flowmap: the requests of its first iteration, rendered as the run would render them. */
import { type CompiledStep, compileSteps, type Context } from './compile.js';
import type { FlowRunnerConfig } from './config.js';
import type { Flowmap } from './flowmap.js';
import { clientHeaders, contextStarter } from './instance.js';
import { profilePool, randomPublicIpv4 } from './realism.js';
import { type Destination, UrlBuilder } from './url.js';

/** One request of a dry-run plan. */
export interface PlannedRequest {
  step: string;
  method: string;
  url: string;
  headers: Record<string, string>;
  body?: string;
  /** Where the step sits: inside a condition branch or a loop. */
  under?: string;
  /** The step URL could not be built (the run would fail this step). */
  error?: string;
}

/**
 * The requests of the first iteration of user 1, rendered with the starting context: what a dry run
 * shows. Both branches of a condition appear (their variables usually come from responses that a dry
 * run does not have), and a loop over a list known up front renders its first item.
 */
export function planFirstIteration(
  config: FlowRunnerConfig,
  flowmap: Flowmap,
  random: () => number = Math.random,
): PlannedRequest[] {
  // The same draws as a run's first instance: the profile pool, then the instance's IP and profile.
  const profiles = profilePool(64, random);
  const ip = randomPublicIpv4(random);
  const profile = profiles[Math.floor(random() * profiles.length)]!;
  const base = clientHeaders(profile, config.xff_header_name.toLowerCase(), ip);
  const urls = new UrlBuilder(config);
  const out: PlannedRequest[] = [];
  const walk = (steps: CompiledStep[], ctx: Context, under?: string) => {
    for (const s of steps) {
      if (s.type === 'request') {
        const stepUrl = s.url(ctx);
        let d: Destination | undefined;
        let error: string | undefined;
        try {
          d = urls.resolve(stepUrl);
        } catch (err) {
          error = `invalid URL ${JSON.stringify(stepUrl)}: ${(err as Error).message}`;
        }
        const body = s.body(ctx);
        out.push({
          step: s.step.id,
          method: s.step.method,
          url: d ? `${d.origin}${d.path}` : stepUrl,
          headers: s.headers(base, ctx, d?.host, body),
          ...(body !== undefined ? { body } : {}),
          ...(under ? { under } : {}),
          ...(error ? { error } : {}),
        });
      } else if (s.type === 'condition') {
        walk(s.then, ctx, `${s.step.id} then`);
        walk(s.else, ctx, `${s.step.id} else`);
      } else {
        const found = s.items(ctx);
        const first =
          'list' in found && found.list.length > 0 ? found.list[0] : `<${s.step.loopVariable} from ${s.step.source}>`;
        walk(s.steps, s.iteration(ctx, first, 0), `${s.step.id} loop`);
      }
    }
  };
  walk(
    compileSteps(flowmap, () => {}),
    contextStarter(flowmap)(1, 1, ip),
  );
  return out;
}

import type { FlowControl } from '../../../../../adapters/flowrunner/control.js';
import type { SystemSampler } from '../../../../../adapters/flowrunner/system.js';
import type { Tokens } from '../../auth/tokens.js';
import type { AgentService } from '../../service/agent-service.js';
import type { SseStreams } from '../sse.js';

/** What the route modules share. Routes parse, call the service, and answer: no rule lives here. */
export interface RouteDeps {
  service: AgentService;
  /** The tokens in force (undefined without auth): open streams end when theirs is revoked. */
  tokens?: Tokens;
  bodyLimitBytes: number;
  /** The FlowRunner control API's flow, and the container numbers it reports. */
  flows: FlowControl;
  system: SystemSampler;
  /** The journal's SSE followers (GET /events?follow=true), counted for the metrics. */
  eventStreams?: SseStreams;
}

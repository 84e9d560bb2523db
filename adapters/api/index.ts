import type { Adapter } from '../contract.js';
import { DEFAULT_EGRESS, EgressPolicy, type EgressSettings } from '../shared/egress.js';
import { createRequestAction } from './request.js';

/** HTTP calls to other services; one action, `request`, reaching only what `egress` allows. */
export function createApiAdapter(egress: EgressSettings = DEFAULT_EGRESS): Adapter {
  const request = createRequestAction(new EgressPolicy(egress));
  return {
    name: 'api',
    description: 'Sends HTTP requests, checks the status and extracts values from the response.',
    actions: { request },
    readiness: () => ({ ready: true }),
  };
}

import type { Adapter } from '../contract.js';
import { DEFAULT_EGRESS, type EgressSettings } from '../shared/egress.js';
import { request } from './request.js';

/** HTTP calls to other services; one action, `request`. */
export function createApiAdapter(_egress: EgressSettings = DEFAULT_EGRESS): Adapter {
  return {
    name: 'api',
    description: 'Sends HTTP requests, checks the status and extracts values from the response.',
    actions: { request },
  };
}

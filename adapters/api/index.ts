import type { Adapter } from '../contract.js';
import { request } from './request.js';

/** HTTP calls to other services; one action, `request`. */
export const apiAdapter: Adapter = {
  name: 'api',
  description: 'Sends HTTP requests, checks the status and extracts values from the response.',
  actions: { request },
};

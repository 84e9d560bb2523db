/** Small packages for tests. */
export function pkg(
  name: string,
  handlers: unknown[],
  extra: { parameters?: unknown; rollback?: unknown; timeoutSeconds?: number } = {},
) {
  return {
    apiVersion: 'wpk/v1',
    kind: 'Workflow',
    metadata: { name, version: '1.0.0' },
    spec: {
      ...(extra.parameters ? { parameters: extra.parameters } : {}),
      ...(extra.timeoutSeconds ? { timeoutSeconds: extra.timeoutSeconds } : {}),
      handlers,
      ...(extra.rollback ? { rollback: extra.rollback } : {}),
    },
  };
}

export function shellStep(name: string, command: string[], more: Record<string, unknown> = {}) {
  return { name, adapter: 'shell', action: 'run', with: { command }, ...more };
}

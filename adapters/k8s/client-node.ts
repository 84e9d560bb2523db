/**
 * @kubernetes/client-node, loaded when the adapter first needs a cluster: loading it costs an agent
 * about 75 MB, which an agent that never talks to a cluster does not pay. Modules of this adapter
 * import only its types; its values come from here.
 */
export type ClientNode = typeof import('@kubernetes/client-node');

let loading: Promise<ClientNode> | undefined;
let loaded: ClientNode | undefined;

export function loadClientNode(): Promise<ClientNode> {
  loading ??= import('@kubernetes/client-node').then((lib) => (loaded = lib));
  return loading;
}

/** The library once it is loaded; before that nothing it throws can exist. */
export function clientNodeIfLoaded(): ClientNode | undefined {
  return loaded;
}

// What client-node's config.js imports from its `./gen/index.js`, and nothing else of the
// generated API: clientNode.ts resolves config.js's import of that index to this module.
export { createConfiguration } from '@kubernetes/client-node/dist/gen/configuration.js';
export { ServerConfiguration } from '@kubernetes/client-node/dist/gen/servers.js';

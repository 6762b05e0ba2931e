// The parts of @kubernetes/client-node the bridge runs on: KubeConfig (kubeconfig and in-cluster
// loading, every auth method, TLS and proxy dispatchers) and RequestContext (a request with that
// auth applied). Imported from client-node's own modules rather than its index: the index, and
// config.js through `./gen/index.js`, load the whole generated API (every model and API class,
// about 50 MiB of RSS) although KubeConfig only needs `createConfiguration` and
// `ServerConfiguration` from it (for makeApiClient). A resolve hook hands config.js a module that
// re-exports exactly those two from the same client-node files (clientNodeGen.ts), so the code
// that runs is client-node's, loaded once. Whoever needs a generated API class (the lease lock)
// imports the full index later; its KubeConfig is this same class.
//
// The hook is registered before the dynamic import below, which is why this module awaits it:
// a static import would be resolved before any code of this module ran. client-node is pinned
// in package.json; a version whose config.js imports more from gen/index.js fails this import
// with a SyntaxError naming the missing export, at start-up and in the unit tests.

import { registerHooks } from 'node:module';
import type * as ConfigModule from '@kubernetes/client-node/dist/config.js';
import type * as HttpModule from '@kubernetes/client-node/dist/gen/http/http.js';

const CONFIG_JS = /\/node_modules\/@kubernetes\/client-node\/dist\/config\.js$/;
// The sources run as .ts (type stripping), the package as compiled .js beside this file.
const SLIM_GEN = new URL(import.meta.url.endsWith('.ts') ? './clientNodeGen.ts' : './clientNodeGen.js', import.meta.url).href;

registerHooks({
  resolve(specifier, context, nextResolve) {
    if (specifier === './gen/index.js' && context.parentURL !== undefined && CONFIG_JS.test(context.parentURL)) {
      return { url: SLIM_GEN, shortCircuit: true };
    }
    return nextResolve(specifier, context);
  },
});

const config: typeof ConfigModule = await import('@kubernetes/client-node/dist/config.js');
const http: typeof HttpModule = await import('@kubernetes/client-node/dist/gen/http/http.js');

export const KubeConfig = config.KubeConfig;
export type KubeConfig = ConfigModule.KubeConfig;
export const RequestContext = http.RequestContext;
export type RequestContext = HttpModule.RequestContext;
export const HttpMethod = http.HttpMethod;

#!/usr/bin/env -S node --max-semi-space-size=1
// The installed package's command (package.json "bin"): runs the compiled bridge in dist/
// (`npm run build`). Node.js does not strip types under node_modules, so the package ships
// JavaScript; a git checkout runs the TypeScript sources with bin/kube-salt-bridge instead.
//
// --max-semi-space-size=1 (MiB; V8's default is 16): the young generation stays small, so the
// garbage of reading a large node list (each Node parsed, then cut down to what the bridge keeps)
// is collected early instead of filling 16 MiB semi-spaces that stay resident. Measured at 5,000
// Nodes (bench/RESULTS.md section 5): RSS about 35 MiB lower, the list and each change no slower.
// Wherever node is started by hand instead of through this line (the Salt formula's unit, the
// image's ENTRYPOINT), the same flag is on that command line.
import module from 'node:module';

const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 22 || (major === 22 && minor < 19)) {
  process.stderr.write(`kube-salt-bridge: needs Node.js >= 22.19.0, this is ${process.version}\n`);
  process.exit(2);
}
// V8's code cache for the modules (in $NODE_COMPILE_CACHE, else node's directory under the
// temporary directory): later starts skip compiling them. Where it cannot be written, nothing changes.
module.enableCompileCache?.();
try {
  await import('../dist/main.js');
} catch (err) {
  if (err?.code === 'ERR_MODULE_NOT_FOUND' && String(err.message).includes('dist/main.js')) {
    process.stderr.write('kube-salt-bridge: dist/ is missing: run `npm run build` (or use bin/kube-salt-bridge in a git checkout)\n');
    process.exit(2);
  }
  throw err;
}

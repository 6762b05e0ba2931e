#!/usr/bin/env node
// The installed package's command (package.json "bin"): runs the compiled bridge in dist/
// (`npm run build`). Node.js does not strip types under node_modules, so the package ships
// JavaScript; a git checkout runs the TypeScript sources with bin/kube-salt-bridge instead.
const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 22 || (major === 22 && minor < 19)) {
  process.stderr.write(`kube-salt-bridge: needs Node.js >= 22.19.0, this is ${process.version}\n`);
  process.exit(2);
}
try {
  await import('../dist/main.js');
} catch (err) {
  if (err?.code === 'ERR_MODULE_NOT_FOUND' && String(err.message).includes('dist/main.js')) {
    process.stderr.write('kube-salt-bridge: dist/ is missing: run `npm run build` (or use bin/kube-salt-bridge in a git checkout)\n');
    process.exit(2);
  }
  throw err;
}

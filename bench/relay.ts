// A TCP relay: `node bench/relay.ts LISTEN_HOST LISTEN_PORT TARGET_HOST TARGET_PORT`.
// The benchmark runs one inside the minion's network namespace on 127.0.0.1:<apiserver port>, so
// that kube_allowlist.pull on the minion can use the harness's kubeconfig (server
// https://127.0.0.1:<port>, certificate for 127.0.0.1) although the apiserver listens on the
// root namespace's loopback only. Bytes pass through untouched (TLS is end to end).
import { createServer, connect, type Server, type Socket } from 'node:net';

export function relay(listenHost: string, listenPort: number, targetHost: string, targetPort: number): Promise<Server> {
  const server = createServer((client: Socket) => {
    const upstream = connect(targetPort, targetHost);
    client.pipe(upstream).pipe(client);
    const close = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', close);
    upstream.on('error', close);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(listenPort, listenHost, () => resolve(server));
  });
}

if (import.meta.main) {
  const [lh, lp, th, tp] = process.argv.slice(2);
  if (!lh || !lp || !th || !tp) {
    console.error('usage: node bench/relay.ts LISTEN_HOST LISTEN_PORT TARGET_HOST TARGET_PORT');
    process.exit(2);
  }
  await relay(lh, Number(lp), th, Number(tp));
  console.log(`relaying ${lh}:${lp} -> ${th}:${tp}`);
}

// Test PKI made with the openssl CLI: one CA, serving certificates, client certificates and a
// service-account key pair. Everything lives in the run's work directory.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { must } from './proc.ts';

export interface Pki {
  dir: string;
  caCrt: string;
  caKey: string;
}

export async function makeCa(dir: string, cn = 'ksb-test-ca'): Promise<Pki> {
  const caKey = join(dir, 'ca.key');
  const caCrt = join(dir, 'ca.crt');
  await must('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', caKey, '-out', caCrt, '-days', '2', '-subj', `/CN=${cn}`]);
  return { dir, caCrt, caKey };
}

export interface Issued {
  crt: string;
  key: string;
}

/** Issues a certificate signed by the CA. `sans` like ['IP:127.0.0.1', 'DNS:localhost'] for servers. */
export async function issue(pki: Pki, name: string, subject: string, opts: { sans?: string[]; client?: boolean } = {}): Promise<Issued> {
  const key = join(pki.dir, `${name}.key`);
  const csr = join(pki.dir, `${name}.csr`);
  const crt = join(pki.dir, `${name}.crt`);
  const ext = join(pki.dir, `${name}.ext`);
  const lines = ['basicConstraints=CA:FALSE', 'keyUsage=digitalSignature,keyEncipherment'];
  lines.push(`extendedKeyUsage=${opts.client ? 'clientAuth' : 'serverAuth,clientAuth'}`);
  if (opts.sans?.length) lines.push(`subjectAltName=${opts.sans.join(',')}`);
  writeFileSync(ext, lines.join('\n') + '\n');
  await must('openssl', ['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', csr, '-subj', subject]);
  await must('openssl', ['x509', '-req', '-in', csr, '-CA', pki.caCrt, '-CAkey', pki.caKey, '-CAcreateserial', '-out', crt, '-days', '2', '-extfile', ext]);
  return { crt, key };
}

export async function rsaKeyPair(dir: string, name: string): Promise<{ key: string; pub: string }> {
  const key = join(dir, `${name}.key`);
  const pub = join(dir, `${name}.pub`);
  await must('openssl', ['genrsa', '-out', key, '2048']);
  await must('openssl', ['rsa', '-in', key, '-pubout', '-out', pub]);
  return { key, pub };
}

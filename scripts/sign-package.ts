// npm run sign -- <package.yaml|json> (--hmac-key-file <file> | --ed25519-private-key-file <pem>)
// Prints the X-WPK-Signature header value for the package, as a registry would send it.
import { createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { SIGNATURE_HEADER, signPackage } from '../services/runtime-agent/src/wpk/signature.js';

const args = process.argv.slice(2);
const flag = (name: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const file = args.find((a, i) => !a.startsWith('--') && !args[i - 1]?.startsWith('--'));
const hmacFile = flag('--hmac-key-file');
const edFile = flag('--ed25519-private-key-file');
if (!file || (!hmacFile && !edFile)) {
  process.stderr.write(
    'usage: npm run sign -- <package.yaml|json> (--hmac-key-file <file> | --ed25519-private-key-file <pem>)\n',
  );
  process.exit(2);
}
const pkg = parseYaml(readFileSync(file, 'utf8'));
const value = hmacFile
  ? signPackage(pkg, { hmacKey: Buffer.from(readFileSync(hmacFile, 'utf8').replace(/\s+$/, ''), 'utf8') })
  : signPackage(pkg, { ed25519PrivateKey: createPrivateKey(readFileSync(edFile!)) });
process.stdout.write(`${SIGNATURE_HEADER}: ${value}\n`);

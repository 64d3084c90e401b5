import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, type JsonWebKey, type KeyObject } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';

export type SigningAlgorithm = 'RS256' | 'ES256';

export interface SigningKey {
  algorithm: SigningAlgorithm;
  kid: string;
  privateKey: KeyObject;
  publicKey: KeyObject;
  /** The public key as a JWK, with kid, alg and use, as served in the JWKS. */
  jwk: JsonWebKey;
}

const GENERATED_KEY_FILE = path.join('auth', 'token-signing-key.pem');

/**
 * The token signing key: the configured PEM file, or one generated on first start into the data directory
 * (mode 0600) and reused afterwards, so tokens survive restarts and every replica sharing the directory agrees.
 */
export async function loadSigningKey(options: { algorithm: SigningAlgorithm; keyFile?: string; dataDir: string }): Promise<SigningKey> {
  const file = options.keyFile ?? path.join(options.dataDir, GENERATED_KEY_FILE);
  const pem = await readFile(file, 'utf8').catch(async (error: NodeJS.ErrnoException) => {
    if (error.code !== 'ENOENT' || options.keyFile !== undefined) throw error;
    return generateKeyFile(file, options.algorithm);
  });
  return signingKeyFrom(createPrivateKey(pem), options.algorithm, file);
}

async function generateKeyFile(file: string, algorithm: SigningAlgorithm): Promise<string> {
  const { privateKey } =
    algorithm === 'ES256' ? generateKeyPairSync('ec', { namedCurve: 'P-256' }) : generateKeyPairSync('rsa', { modulusLength: 3072 });
  const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
  await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  // `wx`: two replicas starting together must not overwrite each other's key; the loser reads the winner's.
  await writeFile(file, pem, { mode: 0o600, flag: 'wx' }).catch(async (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EEXIST') throw error;
  });
  return readFile(file, 'utf8');
}

function signingKeyFrom(privateKey: KeyObject, algorithm: SigningAlgorithm, file: string): SigningKey {
  const expectedType = algorithm === 'ES256' ? 'ec' : 'rsa';
  if (privateKey.asymmetricKeyType !== expectedType) {
    throw new Error(`${file} holds a ${privateKey.asymmetricKeyType} key, but auth.token.algorithm ${algorithm} needs ${expectedType}`);
  }
  if (algorithm === 'ES256' && privateKey.asymmetricKeyDetails?.namedCurve !== 'prime256v1') throw new Error(`${file}: ES256 needs a P-256 key`);
  const publicKey = createPublicKey(privateKey);
  const publicJwk = publicKey.export({ format: 'jwk' });
  const kid = jwkThumbprint(publicJwk);
  return { algorithm, kid, privateKey, publicKey, jwk: { ...publicJwk, kid, alg: algorithm, use: 'sig' } };
}

/** RFC 7638: the SHA-256 of the key's required members in lexicographic order, base64url. */
export function jwkThumbprint(jwk: JsonWebKey): string {
  const members = jwk.kty === 'EC' ? { crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y } : { e: jwk.e, kty: jwk.kty, n: jwk.n };
  return createHash('sha256').update(JSON.stringify(members)).digest('base64url');
}

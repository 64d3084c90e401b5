import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, type JsonWebKey, type KeyObject } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ConfigError } from '../../platform/config.js';

export type SigningAlgorithm = 'RS256' | 'ES256';

/** A public key the registry's own tokens may be signed with: the current signing key or a retired one. */
export interface VerificationKey {
  algorithm: SigningAlgorithm;
  kid: string;
  publicKey: KeyObject;
  /** The public key as a JWK, with kid, alg and use, as served in the JWKS. */
  jwk: JsonWebKey;
}

export interface SigningKey extends VerificationKey {
  privateKey: KeyObject;
}

const GENERATED_KEY_FILE = path.join('auth', 'token-signing-key.pem');

/**
 * The token signing key: the configured PEM file, or one generated on first start into the data directory
 * (mode 0600) and reused afterwards, so tokens survive restarts and every replica sharing the directory agrees.
 */
export async function loadSigningKey(options: { algorithm: SigningAlgorithm; keyFile?: string; dataDir: string }): Promise<SigningKey> {
  const file = options.keyFile ?? path.join(options.dataDir, GENERATED_KEY_FILE);
  const pem = await readFile(file, 'utf8').catch(async (error: NodeJS.ErrnoException) => {
    if (options.keyFile !== undefined)
      throw new KeyFileError(`auth.token.signingKey: cannot read ${file} (${error.code === 'ENOENT' ? 'no such file' : error.message})`);
    if (error.code !== 'ENOENT') throw error;
    return generateKeyFile(file, options.algorithm);
  });
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(pem);
  } catch (error) {
    throw new KeyFileError(`auth.token.signingKey: ${file} is not a PEM private key (${(error as Error).message})`);
  }
  return signingKeyFrom(privateKey, options.algorithm, file);
}

/** A key file the config names that cannot be used: reported like a configuration error. */
export class KeyFileError extends ConfigError {
  override name = 'KeyFileError';
}

/**
 * A retired signing key (`auth.token.previousKeys`): its public key, from a PEM public key, certificate or
 * private key, with the algorithm its type implies. Tokens it signed stay valid until they expire.
 */
export async function loadPreviousKey(file: string, setting: string): Promise<VerificationKey> {
  let publicKey: KeyObject;
  try {
    publicKey = createPublicKey(await readFile(file, 'utf8'));
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (error as Error).message;
    throw new KeyFileError(
      `${setting}: cannot use ${file} (${reason}); it must be the PEM public key (or private key) of a retired RSA or P-256 signing key`,
    );
  }
  const algorithm = algorithmOf(publicKey);
  if (!algorithm)
    throw new KeyFileError(
      `${setting}: ${file} holds a ${publicKey.asymmetricKeyType} key; only RSA (RS256) and P-256 (ES256) keys sign tokens`,
    );
  return verificationKeyFrom(publicKey, algorithm);
}

function algorithmOf(key: KeyObject): SigningAlgorithm | undefined {
  if (key.asymmetricKeyType === 'rsa') return 'RS256';
  if (key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1') return 'ES256';
  return undefined;
}

function verificationKeyFrom(publicKey: KeyObject, algorithm: SigningAlgorithm): VerificationKey {
  const publicJwk = publicKey.export({ format: 'jwk' });
  const kid = jwkThumbprint(publicJwk);
  return { algorithm, kid, publicKey, jwk: { ...publicJwk, kid, alg: algorithm, use: 'sig' } };
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
    throw new KeyFileError(
      `${file} holds a ${privateKey.asymmetricKeyType} key, but auth.token.algorithm ${algorithm} needs ${expectedType}: set the algorithm that matches the key, ` +
        `or (for the generated key) move the file away, list it under auth.token.previousKeys and restart to generate a new one`,
    );
  }
  if (algorithm === 'ES256' && privateKey.asymmetricKeyDetails?.namedCurve !== 'prime256v1')
    throw new KeyFileError(`${file}: ES256 needs a P-256 key`);
  return { ...verificationKeyFrom(createPublicKey(privateKey), algorithm), privateKey };
}

/** RFC 7638: the SHA-256 of the key's required members in lexicographic order, base64url. */
export function jwkThumbprint(jwk: JsonWebKey): string {
  const members = jwk.kty === 'EC' ? { crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y } : { e: jwk.e, kty: jwk.kty, n: jwk.n };
  return createHash('sha256').update(JSON.stringify(members)).digest('base64url');
}

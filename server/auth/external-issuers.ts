import { createHash, createPublicKey, X509Certificate, type JsonWebKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { jwkThumbprint } from './keys.js';

export interface ExternalIssuerConfig {
  issuer: string;
  audience: string;
  /** A JWKS file (`{"keys": [...]}`) with the issuer's public keys. */
  jwks?: string;
  /** Where the issuer publishes its JWKS: fetched at start, again on a kid it does not hold, and when stale. */
  jwksUrl?: string;
  /** The least time between two fetches of jwksUrl, however many unknown kids turn up. */
  jwksRefreshSeconds?: number;
  /** After this long the fetched keys are refreshed in the background on the next use (they are still used meanwhile). */
  jwksCacheSeconds?: number;
  /** A PEM bundle of the certificates whose keys sign tokens, as Distribution's `rootcertbundle`. */
  rootCertBundle?: string;
}

export interface JwksFetchLog {
  warn(details: object, message: string): void;
}

const FETCH_TIMEOUT_MS = 5_000;
const MAX_JWKS_BYTES = 1024 * 1024;

interface TokenHeader {
  kid?: string;
  x5c?: string | string[];
}

/**
 * An existing token server whose tokens Berth accepts, so it can replace registry:2 behind it. Keys are found
 * as Distribution finds them: by `kid` (the JWKS key id or thumbprint, or libtrust's id of a bundle
 * certificate's key), or by an `x5c` chain that ends at a certificate of the bundle.
 */
export class ExternalIssuer {
  readonly issuer: string;
  readonly audience: string;
  private readonly keys = new Map<string, KeyObject>();
  private readonly roots: X509Certificate[] = [];
  /** The keys last fetched from jwksUrl, replaced whole by each successful fetch. */
  private fetchedKeys = new Map<string, KeyObject>();
  private lastFetchStarted = -Infinity;
  private lastFetchSucceeded = -Infinity;
  private fetching: Promise<void> | undefined;

  constructor(
    private readonly config: ExternalIssuerConfig,
    private readonly log?: JwksFetchLog,
    private readonly now: () => number = Date.now,
  ) {
    this.issuer = config.issuer;
    this.audience = config.audience;
    if (config.jwks) for (const [kid, key] of parseJwks(readFileSync(config.jwks, 'utf8'), config.jwks)) this.keys.set(kid, key);
    if (config.rootCertBundle) this.addCertificates(config.rootCertBundle);
  }

  /** The first fetch of jwksUrl. Never throws: an issuer that is down must not keep the registry from starting. */
  async start(): Promise<void> {
    if (this.config.jwksUrl) await this.refresh();
  }

  async keyFor(header: TokenHeader): Promise<KeyObject | undefined> {
    if (header.x5c !== undefined) return this.keyFromChain(([] as string[]).concat(header.x5c));
    if (header.kid === undefined) return undefined;
    const known = this.keys.get(header.kid) ?? this.fetchedKeys.get(header.kid);
    if (!this.config.jwksUrl) return known;
    if (known) {
      if (this.now() - this.lastFetchSucceeded >= (this.config.jwksCacheSeconds ?? 600) * 1000 && this.mayFetch()) void this.refresh();
      return known;
    }
    // A kid we do not hold: perhaps the issuer rotated its keys. Asking again at most once per jwksRefreshSeconds
    // keeps tokens with made-up kids from turning the registry into a load generator against the issuer.
    if (this.fetching) await this.fetching;
    else if (this.mayFetch()) await this.refresh();
    return this.fetchedKeys.get(header.kid);
  }

  private mayFetch(): boolean {
    return !this.fetching && this.now() - this.lastFetchStarted >= (this.config.jwksRefreshSeconds ?? 30) * 1000;
  }

  private refresh(): Promise<void> {
    this.fetching ??= this.fetchJwks().finally(() => (this.fetching = undefined));
    return this.fetching;
  }

  private async fetchJwks(): Promise<void> {
    const url = this.config.jwksUrl!;
    this.lastFetchStarted = this.now();
    try {
      const response = await fetch(url, {
        signal: AbortSignal.timeout(FETCH_TIMEOUT_MS),
        headers: { Accept: 'application/json' },
        redirect: 'error',
      });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      const text = await response.text();
      if (text.length > MAX_JWKS_BYTES) throw new Error(`larger than ${MAX_JWKS_BYTES} bytes`);
      this.fetchedKeys = parseJwks(text, url);
      this.lastFetchSucceeded = this.now();
    } catch (error) {
      // The keys fetched before stay in use: a flaky issuer must not lock everyone out.
      this.log?.warn({ issuer: this.issuer, url, error: (error as Error).message }, 'could not fetch the JWKS of an external token issuer');
    }
  }

  private addCertificates(file: string): void {
    const pems = readFileSync(file, 'utf8').match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
    for (const pem of pems) {
      const certificate = new X509Certificate(pem);
      this.roots.push(certificate);
      this.keys.set(libtrustKeyId(certificate.publicKey), certificate.publicKey);
      this.keys.set(jwkThumbprint(certificate.publicKey.export({ format: 'jwk' })), certificate.publicKey);
    }
  }

  /** The leaf's key, if each certificate is signed by the next and the last is, or is signed by, a root. */
  private keyFromChain(x5c: readonly string[]): KeyObject | undefined {
    try {
      if (x5c.length === 0) return undefined;
      const chain = x5c.map((der) => new X509Certificate(Buffer.from(der, 'base64')));
      const now = Date.now();
      if (chain.some((certificate) => Date.parse(certificate.validFrom) > now || Date.parse(certificate.validTo) < now)) return undefined;
      for (let index = 0; index + 1 < chain.length; index++) if (!chain[index]!.verify(chain[index + 1]!.publicKey)) return undefined;
      const last = chain[chain.length - 1]!;
      const anchored = this.roots.some((root) => root.fingerprint256 === last.fingerprint256 || last.verify(root.publicKey));
      return anchored ? chain[0]!.publicKey : undefined;
    } catch {
      return undefined;
    }
  }
}

/** A JWKS document's signing keys by kid (or RFC 7638 thumbprint); keys that cannot be used (e.g. `oct`, `use: enc`) are skipped. */
function parseJwks(text: string, source: string): Map<string, KeyObject> {
  let keys: unknown;
  try {
    keys = (JSON.parse(text) as { keys?: unknown }).keys;
  } catch (error) {
    throw new Error(`${source} is not JSON: ${(error as Error).message}`, { cause: error });
  }
  if (!Array.isArray(keys)) throw new Error(`${source} is not a JWKS: it has no "keys" list`);
  const result = new Map<string, KeyObject>();
  for (const jwk of keys as JsonWebKey[]) {
    if (jwk.use === 'enc' || (jwk.kty !== 'RSA' && jwk.kty !== 'EC')) continue;
    try {
      result.set(typeof jwk.kid === 'string' ? jwk.kid : jwkThumbprint(jwk), createPublicKey({ key: jwk, format: 'jwk' }));
    } catch {
      // One malformed key does not spoil the others.
    }
  }
  return result;
}

/**
 * docker/libtrust's key id, which Distribution-era token servers put in `kid`: the SHA-256 of the DER public
 * key, first 240 bits, base32, in twelve groups of four joined by colons.
 */
export function libtrustKeyId(key: KeyObject): string {
  const digest = createHash('sha256')
    .update(key.export({ type: 'spki', format: 'der' }))
    .digest()
    .subarray(0, 30);
  return base32(digest).match(/.{4}/g)!.join(':');
}

function base32(bytes: Buffer): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = 0;
  let value = 0;
  let output = '';
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      output += alphabet[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  return output;
}

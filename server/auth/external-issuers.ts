import { createHash, createPublicKey, X509Certificate, type JsonWebKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { jwkThumbprint } from './keys.js';

export interface ExternalIssuerConfig {
  issuer: string;
  audience: string;
  /** A JWKS file (`{"keys": [...]}`) with the issuer's public keys. */
  jwks?: string;
  /** A PEM bundle of the certificates whose keys sign tokens, as Distribution's `rootcertbundle`. */
  rootCertBundle?: string;
}

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

  constructor(config: ExternalIssuerConfig) {
    this.issuer = config.issuer;
    this.audience = config.audience;
    if (config.jwks) this.addJwks(config.jwks);
    if (config.rootCertBundle) this.addCertificates(config.rootCertBundle);
  }

  keyFor(header: TokenHeader): KeyObject | undefined {
    if (header.x5c !== undefined) return this.keyFromChain(([] as string[]).concat(header.x5c));
    return header.kid === undefined ? undefined : this.keys.get(header.kid);
  }

  private addJwks(file: string): void {
    const { keys } = JSON.parse(readFileSync(file, 'utf8')) as { keys?: JsonWebKey[] };
    for (const jwk of keys ?? []) {
      const key = createPublicKey({ key: jwk, format: 'jwk' });
      this.keys.set(typeof jwk.kid === 'string' ? jwk.kid : jwkThumbprint(jwk), key);
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

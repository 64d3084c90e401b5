import { CodedError, DistributionErrors } from '../../platform/errors.js';

const ALLOWED_PROTOCOLS = new Set(['http:', 'https:']);

/**
 * Which URLs a manifest's descriptors may point clients at (foreign and non-distributable layers are
 * fetched from them): http and https only, then the configured allow and deny patterns. Anything else
 * (file:, data:, internal schemes) would turn a pull into a read of whatever the puller can reach.
 */
export class DescriptorUrlPolicy {
  private readonly allow: RegExp[];
  private readonly deny: { pattern: string; regex: RegExp }[];

  constructor(patterns: { allow: string[]; deny: string[] }) {
    this.allow = patterns.allow.map((pattern) => new RegExp(pattern));
    this.deny = patterns.deny.map((pattern) => ({ pattern, regex: new RegExp(pattern) }));
  }

  /** Throws MANIFEST_INVALID naming the first URL that is refused. */
  assertAllowed(urls: string[]): void {
    for (const url of urls) {
      const reason = this.refusal(url);
      if (reason) throw new CodedError(DistributionErrors.MANIFEST_INVALID, `descriptor url ${url} ${reason}`, { detail: { url } });
    }
  }

  private refusal(url: string): string | undefined {
    if (!ALLOWED_PROTOCOLS.has(protocolOf(url) ?? '')) return 'is not an http:// or https:// URL';
    if (this.allow.length > 0 && !this.allow.some((pattern) => pattern.test(url)))
      return 'matches no pattern of validation.manifests.urls.allow';
    const denied = this.deny.find(({ regex }) => regex.test(url));
    if (denied) return `matches ${denied.pattern} of validation.manifests.urls.deny`;
    return undefined;
  }
}

function protocolOf(url: string): string | undefined {
  try {
    return new URL(url).protocol;
  } catch {
    return undefined;
  }
}

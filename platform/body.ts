import { CodedError, DistributionErrors } from './errors.js';

/**
 * Reads a small request body (a manifest, a token request, an agent API call) whole, refusing it as soon as
 * it passes `limit` bytes: a client cannot make the process buffer more than it allows. Large content
 * (blobs, layers) is streamed instead and never comes through here.
 */
export async function readBoundedBody(
  source: AsyncIterable<Buffer | string>,
  options: { limit: number; declaredLength?: number },
): Promise<Buffer> {
  const { limit, declaredLength } = options;
  const tooLarge = () =>
    new CodedError(DistributionErrors.BODY_TOO_LARGE, `request body exceeds the size limit of ${limit} bytes`, { detail: { limit } });
  if (declaredLength !== undefined && declaredLength > limit) throw tooLarge();
  const parts: Buffer[] = [];
  let total = 0;
  try {
    for await (const part of source) {
      const bytes = typeof part === 'string' ? Buffer.from(part) : part;
      total += bytes.length;
      if (total > limit) throw tooLarge();
      parts.push(bytes);
    }
  } catch (error) {
    if (error instanceof CodedError) throw error;
    throw new CodedError(DistributionErrors.BODY_INCOMPLETE, 'request body ended early', { cause: error });
  }
  if (declaredLength !== undefined && total !== declaredLength) {
    throw new CodedError(DistributionErrors.BODY_INCOMPLETE, `received ${total} bytes but Content-Length declared ${declaredLength}`);
  }
  return Buffer.concat(parts, total);
}

import { createHmac } from 'node:crypto';
import { ENVELOPE_MEDIA_TYPE } from './envelope.js';
import type { WebhookEndpoint } from './webhook-config.js';

export const SIGNATURE_HEADER = 'X-Berth-Signature-256';

/** GitHub's form: `sha256=` and the hex HMAC-SHA256 of the exact body bytes under the endpoint's secret. */
export function signature(secret: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

export type DeliveryResult = { ok: true; status: number } | { ok: false; status?: number; error: string };

/** POSTs one envelope; any 2xx is a delivery, anything else (a timeout included) a failure to retry. */
export async function deliver(endpoint: WebhookEndpoint, eventId: string, body: string, stopping: AbortSignal): Promise<DeliveryResult> {
  try {
    const response = await fetch(endpoint.url, {
      method: 'POST',
      headers: {
        ...endpoint.headers,
        'Content-Type': ENVELOPE_MEDIA_TYPE,
        'User-Agent': 'berth-webhooks',
        'X-Berth-Event-Id': eventId,
        [SIGNATURE_HEADER]: signature(endpoint.secret, body),
      },
      body,
      signal: AbortSignal.any([AbortSignal.timeout(endpoint.timeoutMs), stopping]),
      redirect: 'manual',
    });
    // The body is not used; reading it frees the connection for the next delivery.
    await response.arrayBuffer().catch(() => undefined);
    if (response.status >= 200 && response.status < 300) return { ok: true, status: response.status };
    return { ok: false, status: response.status, error: `HTTP ${response.status}` };
  } catch (error) {
    return { ok: false, error: describe(error) };
  }
}

function describe(error: unknown): string {
  const cause = (error as { cause?: { code?: string } }).cause?.code;
  return cause ?? (error as Error).name ?? String(error);
}

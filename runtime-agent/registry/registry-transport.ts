import type { Readable } from 'node:stream';

/** A request without a signal of its own gets this long for its answer's headers and body. */
export const REQUEST_TIMEOUT_MS = 60_000;

/** How one client's requests are authorized: the header to send, and how a 401's challenge is answered. */
export interface RequestAuthorization {
  current(): string | undefined;
  /**
   * Makes current() the answer to this WWW-Authenticate header; throws when the challenge cannot be answered.
   * False when there is nothing better to send (a token given from outside): the 401 then stands.
   */
  answer(wwwAuthenticate: string | null): Promise<boolean>;
}

export interface RegistryRequest {
  method: string;
  /** A path on the registry, or an absolute URL (an upload session's Location). */
  target: string;
  headers: Record<string, string>;
  body: Buffer | Readable | undefined;
  /** `timeout`: REQUEST_TIMEOUT_MS; `none`: as long as it takes (a streamed upload); or the caller's own signal. */
  deadline: 'timeout' | 'none' | AbortSignal;
}

/**
 * Sends one request to a registry the way docker's clients do: with the authorization answered before, and on
 * a 401 answers its challenge once and sends the request again. A streamed body cannot be sent twice: its 401
 * is returned (the first request of a pull or push never streams, so the challenge has been answered by then).
 */
export async function sendToRegistry(baseUrl: string, request: RegistryRequest, authorization: RequestAuthorization): Promise<Response> {
  const streamed = request.body !== undefined && !Buffer.isBuffer(request.body);
  const attempt = () => {
    const current = authorization.current();
    return fetch(new URL(request.target, baseUrl), {
      method: request.method,
      headers: { ...request.headers, ...(current ? { Authorization: current } : {}) },
      body: request.body as BodyInit | undefined,
      ...(streamed ? { duplex: 'half' } : {}),
      signal: signalOf(request.deadline),
    } as RequestInit);
  };
  const response = await attempt();
  if (response.status !== 401 || streamed) return response;
  if (!(await authorization.answer(response.headers.get('www-authenticate')))) return response;
  await response.body?.cancel();
  return attempt();
}

function signalOf(deadline: RegistryRequest['deadline']): AbortSignal | undefined {
  if (deadline === 'timeout') return AbortSignal.timeout(REQUEST_TIMEOUT_MS);
  return deadline === 'none' ? undefined : deadline;
}

import { get as httpGet, type IncomingMessage } from 'node:http';
import { get as httpsGet } from 'node:https';
import type { Readable } from 'node:stream';
import { RegistryError } from './registry-error.js';

/** A request with a deadline gets this long for its answer's headers and body. */
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
  /** `timeout`: REQUEST_TIMEOUT_MS; `none`: as long as it takes (a streamed upload). */
  deadline: 'timeout' | 'none';
}

/**
 * Sends one request to a registry the way docker's clients do: with the authorization answered before, and on
 * a 401 answers its challenge once and sends the request again. A streamed body cannot be sent twice: its 401
 * is returned (the first request of a pull or push never streams, so the challenge has been answered by then).
 */
export async function sendToRegistry(baseUrl: string, request: RegistryRequest, authorization: RequestAuthorization): Promise<Response> {
  const streamed = request.body !== undefined && !Buffer.isBuffer(request.body);
  const attempt = (current: string | undefined) =>
    fetch(new URL(request.target, baseUrl), {
      method: request.method,
      headers: { ...request.headers, ...(current ? { Authorization: current } : {}) },
      body: request.body as BodyInit | undefined,
      ...(streamed ? { duplex: 'half' } : {}),
      signal: signalOf(request.deadline),
    } as RequestInit);
  if (streamed) return attempt(authorization.current());
  return answeringChallenge(attempt, authorization, {
    status: (response) => response.status,
    challenge: (response) => response.headers.get('www-authenticate'),
    discard: (response) => response.body?.cancel(),
  });
}

/**
 * A GET whose body is a node stream read straight off the socket (node:http), for blobs: fetch's web stream
 * turned back into a node stream cost about 0.1 s of main-thread CPU per 40 MiB. Authorized like
 * sendToRegistry; redirects are followed (a registry on S3 answers 307 with a presigned URL), the
 * Authorization going to the registry's own origin only. A connection on which nothing arrives for
 * `idleTimeoutMs`, before the answer or within its body, is destroyed: a registry that promised more
 * bytes than it sends leaves it open otherwise.
 */
export function streamFromRegistry(
  baseUrl: string,
  target: string,
  headers: Record<string, string>,
  authorization: RequestAuthorization,
  idleTimeoutMs: number,
): Promise<IncomingMessage> {
  const url = new URL(target, baseUrl);
  return answeringChallenge((current) => getFollowingRedirects(url, headers, current, idleTimeoutMs, MAX_REDIRECTS), authorization, {
    status: (response) => response.statusCode ?? 0,
    challenge: (response) => response.headers['www-authenticate'] ?? null,
    discard: (response) => void response.resume(),
  });
}

const MAX_REDIRECTS = 5;
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);

async function getFollowingRedirects(
  url: URL,
  headers: Record<string, string>,
  authorization: string | undefined,
  idleTimeoutMs: number,
  redirectsLeft: number,
): Promise<IncomingMessage> {
  const response = await getOnce(url, { ...headers, ...(authorization ? { Authorization: authorization } : {}) }, idleTimeoutMs);
  const location = response.headers.location;
  if (!REDIRECT_STATUSES.has(response.statusCode ?? 0) || !location) return response;
  response.resume();
  if (redirectsLeft === 0)
    throw new RegistryError(response.statusCode ?? 0, `${url.origin}${url.pathname}: more than ${MAX_REDIRECTS} redirects`);
  const next = new URL(location, url);
  // A presigned URL carries its own authorization, and another host must never see the registry's token.
  const forwarded = next.origin === url.origin ? authorization : undefined;
  return getFollowingRedirects(next, headers, forwarded, idleTimeoutMs, redirectsLeft - 1);
}

function getOnce(url: URL, headers: Record<string, string>, idleTimeoutMs: number): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const get = url.protocol === 'https:' ? httpsGet : httpGet;
    let answer: IncomingMessage | undefined;
    const request = get(url, { headers, timeout: idleTimeoutMs }, (response) => {
      answer = response;
      resolve(response);
    });
    request.on('timeout', () => {
      const stalled = new Error(`${url.origin}${url.pathname}: no data for ${idleTimeoutMs / 1000} s`);
      if (answer) answer.destroy(stalled);
      else request.destroy(stalled);
    });
    request.on('error', reject);
  });
}

/** How answeringChallenge reads one kind of answer. */
interface AnswerView<T> {
  status(answer: T): number;
  challenge(answer: T): string | null;
  /** Lets go of an answer that will not be read. */
  discard(answer: T): Promise<void> | void;
}

/** Sends with the authorization answered before; on a 401, answers its challenge once and sends again. */
async function answeringChallenge<T>(
  attempt: (authorization: string | undefined) => Promise<T>,
  authorization: RequestAuthorization,
  view: AnswerView<T>,
): Promise<T> {
  const answer = await attempt(authorization.current());
  if (view.status(answer) !== 401) return answer;
  if (!(await authorization.answer(view.challenge(answer)))) return answer;
  await view.discard(answer);
  return attempt(authorization.current());
}

function signalOf(deadline: RegistryRequest['deadline']): AbortSignal | undefined {
  return deadline === 'timeout' ? AbortSignal.timeout(REQUEST_TIMEOUT_MS) : undefined;
}

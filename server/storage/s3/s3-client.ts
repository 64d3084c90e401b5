import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { S3Client } from '@aws-sdk/client-s3';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import type { Config } from '../../config.js';

export type S3Config = NonNullable<Config['storage']['s3']>;

// Enough parallel sockets for many concurrent pushes and part copies; S3 scales per prefix, not per socket.
const MAX_SOCKETS = 128;
// Establishing a TCP (and TLS) connection is fast or broken; waiting longer only delays the retry.
const CONNECTION_TIMEOUT_MS = 5_000;

/**
 * The S3 client with the fault handling the registry relies on: the SDK's standard retry mode (exponential
 * backoff with full jitter; retries throttling such as 503 SlowDown, 5xx, connection resets and timeouts),
 * and a per-request socket timeout so a stalled call is abandoned and retried instead of hanging a push.
 */
export function createS3Client(config: S3Config): S3Client {
  const agentOptions = { keepAlive: true, maxSockets: MAX_SOCKETS };
  return new S3Client({
    region: config.region,
    endpoint: config.endpoint,
    forcePathStyle: config.forcePathStyle,
    credentials: config.credentials,
    maxAttempts: config.maxAttempts,
    retryMode: 'standard',
    // Checksums only where S3 demands them: every body we send is a Buffer of known length that S3 checks
    // against Content-Length, and digests are verified by the registry itself; S3-compatible servers
    // differ in which flexible-checksum headers they understand.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    requestHandler: new NodeHttpHandler({
      connectionTimeout: CONNECTION_TIMEOUT_MS,
      // An idle-socket timeout rather than a total one: a large part may take long, but never in silence.
      socketTimeout: config.requestTimeoutMs,
      httpAgent: new HttpAgent(agentOptions),
      httpsAgent: new HttpsAgent(agentOptions),
    }),
  });
}

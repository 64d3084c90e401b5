import { pino, type Logger } from 'pino';
import type { Config } from './config.js';

/**
 * JSON lines for production; `pretty` (pino-pretty) for people at a terminal. Credentials
 * never reach the log: the headers that carry them are redacted wherever they appear.
 */
export function createLogger(config: Config['log']): Logger {
  return pino({
    level: config.level,
    base: { service: 'berth' },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: ['*.authorization', '*.headers.authorization', '*.headers.cookie', '*.password', '*.secret', '*.token'], censor: '[redacted]' },
    transport: config.format === 'pretty' ? { target: 'pino-pretty', options: PRETTY } : undefined,
  });
}

// One line per entry, a request as `GET /v2/... 200 3.1ms` with the rest of its fields after it. pino-pretty
// colours only when writing to a terminal, so a redirected log stays plain text.
const PRETTY = {
  singleLine: true,
  ignore: 'service',
  messageFormat: '{msg}{if method} {method} {path} {status} {durationMs}ms{end}',
};

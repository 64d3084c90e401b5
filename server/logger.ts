import { pino, type Logger } from 'pino';
import type { Config } from './config.js';

/**
 * JSON lines for production; `pretty` (pino-pretty, if installed) for people at a terminal. Credentials
 * never reach the log: the headers that carry them are redacted wherever they appear.
 */
export function createLogger(config: Config['log']): Logger {
  return pino({
    level: config.level,
    base: { service: 'berth' },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: ['*.authorization', '*.headers.authorization', '*.headers.cookie', '*.password', '*.secret', '*.token'], censor: '[redacted]' },
    transport: config.format === 'pretty' ? { target: 'pino-pretty', options: { colorize: true } } : undefined,
  });
}

import { pino, type Logger } from 'pino';

export type { Logger } from 'pino';

export interface LoggerOptions {
  level: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  format: 'json' | 'pretty';
  /** The `service` field of every line: which program wrote it. */
  service?: string;
  /** Standard error for commands whose standard output is their result (`berth gc`). */
  destination?: 'stdout' | 'stderr';
}

/**
 * Credentials never reach the log: wherever a header, password, token or secret key appears (at the top
 * of an entry or one object down, where request and error objects put them) its value is censored.
 */
export const REDACTED_PATHS = [
  'authorization',
  'password',
  'secret',
  'token',
  'credentials',
  '*.authorization',
  '*.headers.authorization',
  '*.headers.cookie',
  '*.headers["set-cookie"]',
  '*.password',
  '*.secret',
  '*.token',
  '*.credentials',
  '*.secretAccessKey',
  '*.sessionToken',
];

/** JSON lines for production; `pretty` (pino-pretty) for people at a terminal. */
export function createLogger(options: LoggerOptions): Logger {
  const fd = options.destination === 'stderr' ? 2 : 1;
  return pino(
    {
      level: options.level,
      base: { service: options.service ?? 'berth' },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
      transport: options.format === 'pretty' ? { target: 'pino-pretty', options: { ...PRETTY, destination: fd } } : undefined,
    },
    options.format === 'pretty' ? undefined : pino.destination(fd),
  );
}

/** A logger that writes nothing, for helpers that need one (tests tearing down a network). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}

// One line per entry, a request as `GET /v2/... 200 3.1ms` with the rest of its fields after it. pino-pretty
// colours only when writing to a terminal, so a redirected log stays plain text.
const PRETTY = {
  singleLine: true,
  ignore: 'service',
  messageFormat: '{msg}{if method} {method} {path} {status} {durationMs}ms{end}',
};

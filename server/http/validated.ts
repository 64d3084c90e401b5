import type { z } from 'zod';
import { CodedError, type ErrorCode } from '../../platform/errors.js';

/** The body (or query) as the schema parses it, or the API's invalid-request error listing every issue with its path. */
export function validated<T extends z.ZodType>(schema: T, body: unknown, invalid: ErrorCode): z.output<T> {
  const parsed = schema.safeParse(body);
  if (parsed.success) return parsed.data;
  const issues = parsed.error.issues.map((issue) => `${issue.path.join('.') || '(body)'}: ${issue.message}`);
  throw new CodedError(invalid, issues.join('; '), { detail: { issues } });
}

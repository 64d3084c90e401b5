import type { z } from 'zod';
import { CodedError, registerErrorCodes } from '../platform/errors.js';

/**
 * The agent API's error codes: the daemon answers every refused request with one of these (status and
 * `{"errors":[{"code","message","detail"}]}`), and the CLI decides what to do by the code, never the text.
 */
export const AgentErrors = registerErrorCodes('agent', {
  REQUEST_INVALID: { status: 400, message: 'request invalid' },
  REFERENCE_INVALID: { status: 400, message: 'invalid reference format' },
  RUN_OPTIONS_INVALID: { status: 400, message: 'invalid run options' },
  IMAGE_UNKNOWN: { status: 404, message: 'No such image' },
  IMAGE_IN_USE: { status: 409, message: 'image is in use by a container' },
  IMAGE_AMBIGUOUS: { status: 400, message: 'several images match' },
  CONTAINER_UNKNOWN: { status: 404, message: 'No such container' },
  CONTAINER_AMBIGUOUS: { status: 400, message: 'multiple containers match' },
  NAME_IN_USE: { status: 409, message: 'container name already in use' },
  CONTAINER_NOT_RUNNING: { status: 409, message: 'container is not running' },
  CONTAINER_RUNNING: { status: 409, message: 'container is running' },
  CONTAINER_STARTING: { status: 409, message: 'container is already starting' },
  STDIN_CLOSED: { status: 409, message: 'container has no open stdin' },
  TERMINAL_ABSENT: { status: 409, message: 'container has no terminal' },
  CONTAINER_PAUSED: { status: 409, message: 'container is paused' },
  CONTAINER_NOT_PAUSED: { status: 409, message: 'container is not paused' },
  PATH_UNKNOWN: { status: 404, message: 'no such file or directory in the container' },
  VOLUME_UNKNOWN: { status: 404, message: 'no such volume' },
  VOLUME_IN_USE: { status: 409, message: 'volume is in use' },
  LOGIN_DENIED: { status: 401, message: 'login failed: incorrect username or password' },
  REGISTRY_UNAVAILABLE: { status: 502, message: 'the registry could not be reached' },
  START_FAILED: { status: 500, message: 'the container could not be started' },
  ROUTE_UNKNOWN: { status: 404, message: 'no such route' },
  INTERNAL: { status: 500, message: 'internal error' },
});

/** `path: message` for each problem zod found, e.g. `image: Invalid input: expected string, received number`. */
export function describeIssues(error: z.ZodError): string {
  return error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`).join('; ');
}

/** A request body that does not have the API's shape: 400 REQUEST_INVALID naming the fields. */
export function invalidRequest(error: z.ZodError): CodedError {
  const fields = error.issues.map((issue) => ({ field: issue.path.join('.'), message: issue.message }));
  return new CodedError(AgentErrors.REQUEST_INVALID, `invalid request: ${describeIssues(error)}`, { detail: { fields } });
}

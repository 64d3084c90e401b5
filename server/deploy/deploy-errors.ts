import { registerErrorCodes } from '../../platform/errors.js';

/** The deployment API's codes (admin and node routes), rendered like every other CodedError. */
export const DeployErrors = registerErrorCodes('deploy', {
  COMPOSE_INVALID: { status: 400, message: 'the compose file is invalid' },
  REQUEST_INVALID: { status: 400, message: 'the request is invalid' },
  IMAGE_UNKNOWN: { status: 400, message: 'the image is not in this registry' },
  DIGEST_QUARANTINED: { status: 409, message: 'the digest failed a rollout of this tag' },
  STACK_UNKNOWN: { status: 404, message: 'no such stack' },
  SERVICE_UNKNOWN: { status: 404, message: 'no such service' },
  NODE_UNKNOWN: { status: 404, message: 'no such node' },
  NODE_NAME_IN_USE: { status: 409, message: 'a live node has this name' },
  JOIN_TOKEN_INVALID: { status: 401, message: 'the join token is invalid or expired' },
  NODE_UNAUTHORIZED: { status: 401, message: 'node credentials required' },
});

import { registerErrorCodes } from '../../platform/errors.js';

/** The automated-build API's codes (admin, forge webhooks and the workers' API). */
export const BuildErrors = registerErrorCodes('builds', {
  REQUEST_INVALID: { status: 400, message: 'the request is invalid' },
  PROJECT_UNKNOWN: { status: 404, message: 'no such build project' },
  PROJECT_EXISTS: { status: 409, message: 'the build project exists' },
  BUILD_UNKNOWN: { status: 404, message: 'no such build' },
  BUILD_FINISHED: { status: 409, message: 'the build has finished' },
  NO_RULE_MATCHES: { status: 400, message: 'no build rule matches the ref' },
  FORGE_UNKNOWN: { status: 400, message: 'not a GitHub, Gitea, Forgejo or GitLab webhook' },
  SIGNATURE_MISSING: { status: 401, message: 'the webhook is not signed' },
  SIGNATURE_INVALID: { status: 403, message: 'the webhook signature does not match' },
  PAYLOAD_INVALID: { status: 400, message: 'the webhook payload is not a push event this endpoint understands' },
  WORKER_UNAUTHORIZED: { status: 401, message: 'build worker credentials required' },
  LEASE_LOST: { status: 409, message: 'the job is no longer held by this worker' },
});

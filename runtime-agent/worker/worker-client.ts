import type { BuildSpec, ClaimedBuildJob, FinishReport } from '../../platform/build-worker-api.js';

/** The registry's answer that this worker no longer holds the job (its lease ran out, another took it). */
export class LeaseLostError extends Error {
  override name = 'LeaseLostError';
}

const REQUEST_TIMEOUT_MS = 30_000;

/** The build workers' API of the registry (/builds/v1/worker), with the worker token. */
export class WorkerClient {
  private readonly base: string;

  constructor(
    registry: string,
    private readonly token: string,
    private readonly agent: string,
  ) {
    this.base = `${registry.replace(/\/+$/, '')}/builds/v1/worker`;
  }

  /** The registry's `host:port`, where images are pushed. */
  get registryHost(): string {
    return new URL(this.base).host;
  }

  /** Long-polls for a job; `stop` hangs up (the registry hands no job to a closed connection). */
  async claim(waitSeconds: number, stop: AbortSignal): Promise<ClaimedBuildJob | undefined> {
    const response = await this.post('/claim', { waitSeconds }, (waitSeconds + 30) * 1000, stop);
    return response === undefined ? undefined : (response as ClaimedBuildJob);
  }

  /** True when the build was asked to cancel. */
  async renew(job: ClaimedBuildJob): Promise<boolean> {
    return ((await this.post(`/jobs/${job.id}/lease`, { attempt: job.attempt })) as { cancel: boolean }).cancel;
  }

  async source(job: ClaimedBuildJob, commit: { sha: string; time: number; message: string }): Promise<BuildSpec> {
    return (await this.post(`/jobs/${job.id}/source`, {
      attempt: job.attempt,
      commit: commit.sha,
      time: commit.time,
      message: commit.message,
    })) as BuildSpec;
  }

  /** A token to push the job's image to its repository (and nothing else), minted now; null when the registry has no auth. */
  async pushToken(job: ClaimedBuildJob): Promise<{ token: string | null }> {
    return (await this.post(`/jobs/${job.id}/push-token`, { attempt: job.attempt })) as { token: string | null };
  }

  async log(job: ClaimedBuildJob, lines: string[]): Promise<void> {
    await this.post(`/jobs/${job.id}/log`, { attempt: job.attempt, lines });
  }

  /** The job's end, with the log's last lines. */
  async finish(job: ClaimedBuildJob, report: FinishReport, lastLines: string[]): Promise<void> {
    await this.post(`/jobs/${job.id}/finish`, { attempt: job.attempt, ...report, log: lastLines });
  }

  private async post(path: string, body: object, timeoutMs = REQUEST_TIMEOUT_MS, stop?: AbortSignal): Promise<unknown> {
    const response = await fetch(this.base + path, {
      method: 'POST',
      headers: { Authorization: `Bearer ${this.token}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ agent: this.agent, ...body }),
      signal: stop ? AbortSignal.any([stop, AbortSignal.timeout(timeoutMs)]) : AbortSignal.timeout(timeoutMs),
    });
    const text = await response.text();
    if (response.status === 409) throw new LeaseLostError(`build ${path}: ${text}`);
    if (!response.ok) throw new Error(`registry answered ${response.status} to ${path}: ${text.slice(0, 500)}`);
    return text === '' ? undefined : (JSON.parse(text) as unknown);
  }
}

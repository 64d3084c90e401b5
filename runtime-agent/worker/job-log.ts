import type { BuildEvent } from '../build/build-progress.js';
import type { ClaimedBuildJob, FinishReport } from '../../platform/build-worker-api.js';
import type { WorkerClient } from './worker-client.js';

const FLUSH_INTERVAL_MS = 300;
// The registry reads a worker call whole up to 64 KiB: a batch stays well under it.
const MAX_BATCH_BYTES = 32 * 1024;
const MAX_LINE_BYTES = 8 * 1024;
// The finish call also carries the error (up to a few KiB in practice) and the steps.
const MAX_FINAL_BYTES = 16 * 1024;

/**
 * A job's log on its way to the registry, in batches, with every secret value masked (a RUN step that
 * prints a secret must not put it in the log), and the steps' times collected for the build record.
 */
export class JobLog {
  private pending: string[] = [];
  private pendingBytes = 0;
  private sending: Promise<void> = Promise.resolve();
  private readonly timer: NodeJS.Timeout;
  /** The build record's steps in order: the builder's (by their event id) and the worker's own phases. */
  private readonly entries: Array<{ name: string; cached: boolean; seconds: number }> = [];
  private readonly builderSteps = new Map<number, number>();

  constructor(
    private readonly client: WorkerClient,
    private readonly job: ClaimedBuildJob,
    private readonly secrets: readonly string[],
  ) {
    this.timer = setInterval(() => this.flush(), FLUSH_INTERVAL_MS);
  }

  line(text: string): void {
    const line = this.redact(text).slice(0, MAX_LINE_BYTES);
    this.pending.push(line);
    this.pendingBytes += Buffer.byteLength(line) + 4;
    if (this.pendingBytes >= MAX_BATCH_BYTES) this.flush();
  }

  event(event: BuildEvent, text: string | undefined): void {
    if (event.type === 'step') this.builderSteps.set(event.id, this.entries.push({ name: event.name, cached: false, seconds: 0 }) - 1);
    if (event.type === 'cached') this.update(event.id, { cached: true });
    if (event.type === 'step-done' || event.type === 'step-error') this.update(event.id, { seconds: event.seconds });
    if (text !== undefined) for (const line of text.split('\n')) if (line !== '') this.line(line);
  }

  /** A phase of the worker's own (fetching the commit, pushing the image), timed as a step of the build record. */
  async phase<T>(name: string, work: () => Promise<T>): Promise<T> {
    const index = this.entries.push({ name, cached: false, seconds: 0 }) - 1;
    const started = performance.now();
    try {
      return await work();
    } finally {
      this.entries[index]!.seconds = (performance.now() - started) / 1000;
    }
  }

  steps(): FinishReport['steps'] {
    return this.entries.map((step) => ({ ...step, seconds: Math.round(step.seconds * 1000) / 1000 }));
  }

  redact(text: string): string {
    let redacted = text;
    for (const secret of this.secrets) if (secret.length > 0) redacted = redacted.split(secret).join('***');
    return redacted;
  }

  /**
   * Ends the log: the batches under way are sent, and the last lines are returned to go with the finish call
   * (one request less at the end of every build), unless they would make that call too large: then they are
   * sent as a batch of their own and none are returned.
   */
  async close(): Promise<string[]> {
    clearInterval(this.timer);
    if (this.pendingBytes > MAX_FINAL_BYTES) this.flush();
    await this.sending;
    const rest = this.pending;
    this.pending = [];
    this.pendingBytes = 0;
    return rest;
  }

  private update(id: number, change: Partial<{ cached: boolean; seconds: number }>): void {
    const index = this.builderSteps.get(id);
    if (index !== undefined) Object.assign(this.entries[index]!, change);
  }

  private flush(): void {
    if (this.pending.length === 0) return;
    const batch = this.pending;
    this.pending = [];
    this.pendingBytes = 0;
    // In order, one batch at a time; a lost batch is not worth failing the build for.
    this.sending = this.sending.then(() => this.client.log(this.job, batch).catch(() => undefined));
  }
}

/**
 * Every Redis key of automated builds, as metadata/keys.ts does for the registry's: nothing else in
 * server/builds builds a key name, and the scripts receive them as KEYS (a job's own keys are derived in Lua
 * from jobPrefix(), the one place that spells them besides job() and log()).
 *
 *   <p>builds:projects              HASH project name -> project JSON (credentials and webhook secret inside)
 *   <p>builds:secrets:<project>     HASH secret id -> value (write-only through the API)
 *   <p>builds:delivery:<project>:<id> STRING a forge delivery already queued (expires)
 *   <p>builds:seq                   STRING the last build number
 *   <p>builds:job:<id>              HASH record (JSON), state, attempt, worker, cancel, result fields
 *   <p>builds:log:<id>              LIST log lines
 *   <p>builds:jobs                  ZSET build id -> created (ms): every kept build, for listings
 *   <p>builds:queue                 ZSET build id -> queued (ms): builds waiting for a worker, oldest first
 *   <p>builds:running               ZSET build id -> lease expiry (ms)
 *   <p>builds:active:<project>      SET build ids of the project running now (its concurrency)
 *   <p>builds:slot:<slot>           STRING the newest build id of a project, rule and ref (superseding)
 *   <p>builds:workers               HASH worker token id -> JSON { hash, expiresAt, name }
 *   <p>builds:waiting               ZSET agent@worker -> end of its long-poll (ms): workers asking for work now
 *   <p>builds:builders              HASH project -> agent@worker that took its last job (it has the mirror and cache)
 */
export class BuildKeys {
  constructor(private readonly prefix: string) {}

  projects(): string {
    return this.key('projects');
  }

  secrets(project: string): string {
    return this.key(`secrets:${project}`);
  }

  delivery(project: string, id: string): string {
    return this.key(`delivery:${project}:${id}`);
  }

  sequence(): string {
    return this.key('seq');
  }

  job(id: string): string {
    return this.jobPrefix() + id;
  }

  /** What job(id) is `jobPrefix() .. id`, for the scripts that reach other jobs of the queue. */
  jobPrefix(): string {
    return this.key('job:');
  }

  log(id: string): string {
    return this.key(`log:${id}`);
  }

  jobs(): string {
    return this.key('jobs');
  }

  queue(): string {
    return this.key('queue');
  }

  running(): string {
    return this.key('running');
  }

  active(project: string): string {
    return this.activePrefix() + project;
  }

  activePrefix(): string {
    return this.key('active:');
  }

  slot(slot: string): string {
    return this.key(`slot:${slot}`);
  }

  workers(): string {
    return this.key('workers');
  }

  waiting(): string {
    return this.key('waiting');
  }

  builders(): string {
    return this.key('builders');
  }

  private key(suffix: string): string {
    return `${this.prefix}builds:${suffix}`;
  }
}

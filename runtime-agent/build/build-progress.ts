/**
 * A build's progress as events the daemon streams to the CLI, numbered as BuildKit numbers its vertices
 * (`#5`), with each step's time; the CLI prints them in BuildKit's plain style (see formatBuildEvent).
 */

export type BuildEvent =
  | { type: 'step'; id: number; name: string }
  | { type: 'cached'; id: number }
  | { type: 'log'; id: number; elapsed: number; text: string }
  | { type: 'step-done'; id: number; seconds: number }
  | { type: 'step-error'; id: number; seconds: number; message: string }
  | { type: 'done'; imageId: string; manifestDigest: string; tags: string[] }
  | { type: 'error'; message: string; exitCode: number | undefined };

export class BuildProgress {
  private next = 1;
  private readonly started = new Map<number, number>();

  constructor(private readonly report: (event: BuildEvent) => void) {}

  begin(name: string): number {
    const id = this.next++;
    this.started.set(id, performance.now());
    this.report({ type: 'step', id, name });
    return id;
  }

  cached(id: number): void {
    this.report({ type: 'cached', id });
  }

  log(id: number, text: string): void {
    this.report({ type: 'log', id, elapsed: this.elapsed(id), text });
  }

  done(id: number): void {
    this.report({ type: 'step-done', id, seconds: this.elapsed(id) });
  }

  failed(id: number, message: string): void {
    this.report({ type: 'step-error', id, seconds: this.elapsed(id), message });
  }

  private elapsed(id: number): number {
    return (performance.now() - (this.started.get(id) ?? performance.now())) / 1000;
  }
}

/** BuildKit's plain progress: `#5 [build 3/6] RUN make`, `#5 0.512 output`, `#5 CACHED`, `#5 DONE 1.2s`. */
export function formatBuildEvent(event: BuildEvent): string | undefined {
  switch (event.type) {
    case 'step':
      return `#${event.id} ${event.name}`;
    case 'cached':
      return `#${event.id} CACHED`;
    case 'log':
      return `#${event.id} ${event.elapsed.toFixed(3)} ${event.text}`;
    case 'step-done':
      return `#${event.id} DONE ${event.seconds.toFixed(1)}s\n`;
    case 'step-error':
      return `#${event.id} ERROR: ${event.message}\n`;
    case 'done':
      return [`#${'0'} writing image ${event.imageId} done`, ...event.tags.map((tag) => `#0 naming to ${tag} done`)].join('\n');
    case 'error':
      return undefined;
  }
}

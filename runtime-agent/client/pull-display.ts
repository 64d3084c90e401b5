import type { MultiBar, SingleBar } from 'cli-progress';
import type { LayerAction, PullEvent } from '../api.js';
import { humanSize } from './human-format.js';

/** Shows a pull's events: a line per layer redrawn with a bar on a terminal, plain lines otherwise. */
export interface PullDisplay {
  show(event: PullEvent): void;
  stop(): void;
}

/** cli-progress (and the string-width modules under it) is loaded for a terminal only: a piped pull starts without it. */
export async function pullDisplay(output: NodeJS.WriteStream): Promise<PullDisplay> {
  if (!output.isTTY) return new PlainPullDisplay(output);
  const { MultiBar: Bars } = await import('cli-progress');
  return new TerminalPullDisplay(output, Bars);
}

const BAR_WIDTH = 50;
const SHOWS_BAR = new Set<LayerAction>(['Downloading', 'Extracting', 'Pushing']);

/** Docker's look: `abc123def456: Downloading [=====>      ]  1.2MB/3.4MB`. */
function layerLine(id: string, action: LayerAction, current: number, total: number): string {
  if (!SHOWS_BAR.has(action) || total <= 0) return `${id}: ${action}`;
  const filled = Math.min(BAR_WIDTH, Math.floor((current / total) * BAR_WIDTH));
  const bar =
    filled >= BAR_WIDTH ? '='.repeat(BAR_WIDTH) : `${'='.repeat(Math.max(0, filled - 1))}>${' '.repeat(BAR_WIDTH - Math.max(1, filled))}`;
  return `${id}: ${action} [${bar}]  ${humanSize(current)}/${humanSize(total)}`;
}

interface LayerPayload {
  id: string;
  action: LayerAction;
}

/**
 * cli-progress keeps one line per layer and redraws them in place (cursor movement, throttled redraws,
 * terminal width). As in docker, status lines from before the layers are known go above the bars, later
 * ones (digest, outcome) below them once they are done.
 */
class TerminalPullDisplay implements PullDisplay {
  private readonly bars: MultiBar;
  private readonly layers = new Map<string, SingleBar>();
  private readonly trailer: string[] = [];

  constructor(
    private readonly output: NodeJS.WriteStream,
    Bars: typeof MultiBar,
  ) {
    this.bars = new Bars({
      stream: output,
      hideCursor: true,
      clearOnComplete: false,
      stopOnComplete: false,
      linewrap: false,
      format: (_options, params, payload: LayerPayload) => layerLine(payload.id, payload.action, params.value, params.total),
    });
  }

  show(event: PullEvent): void {
    switch (event.type) {
      case 'layer': {
        const total = event.total ?? 0;
        const current = event.current ?? (event.action === 'Pull complete' || event.action === 'Download complete' ? total : 0);
        const bar = this.layers.get(event.id);
        const payload: LayerPayload = { id: event.id, action: event.action };
        if (bar) {
          if (total > 0) bar.setTotal(total);
          bar.update(current, payload);
        } else {
          this.layers.set(event.id, this.bars.create(total, current, payload));
        }
        return;
      }
      case 'status':
        if (this.layers.size === 0) this.output.write(`${event.message}\n`);
        else this.trailer.push(`${event.message}\n`);
        return;
      case 'warning':
        return this.bars.log(`WARNING: ${event.message}\n`);
      case 'error':
      case 'done':
        return;
    }
  }

  stop(): void {
    // A last redraw prints warnings still in cli-progress's log buffer, which stop() alone would drop.
    this.bars.update();
    this.bars.stop();
    for (const line of this.trailer) this.output.write(line);
  }
}

/** Not a terminal (logs, CI, pipes): one line per state change, never per byte count. */
class PlainPullDisplay implements PullDisplay {
  private readonly states = new Map<string, LayerAction>();

  constructor(private readonly output: NodeJS.WriteStream) {}

  show(event: PullEvent): void {
    if (event.type === 'status') this.output.write(`${event.message}\n`);
    else if (event.type === 'warning') this.output.write(`WARNING: ${event.message}\n`);
    else if (event.type === 'layer' && this.states.get(event.id) !== event.action) {
      this.states.set(event.id, event.action);
      this.output.write(`${event.id}: ${event.action}\n`);
    }
  }

  stop(): void {}
}

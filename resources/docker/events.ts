import type Docker from 'dockerode';

export interface EngineEvent {
  /** `service` and `node` come from a Swarm manager. */
  type: 'container' | 'network' | 'service' | 'node';
  action: string;
  id: string;
  /** Container events carry the container's labels; network events carry none. */
  attributes: Record<string, string>;
  time: number;
}

const TYPES = ['container', 'network', 'service', 'node'] as const;
const EVENT_TYPES: ReadonlySet<string> = new Set(TYPES);

export interface EventStreamHandlers {
  onEvent: (e: EngineEvent) => void;
  /** The stream is up (first time, or again after an outage). */
  onConnected: (reconnected: boolean) => void;
  /** The stream ended or could not be opened; a reconnect follows after `retryInMs`. */
  onLost: (err: Error, retryInMs: number) => void;
}

/**
 * Follows the Engine's event stream (containers and networks; services and nodes on a manager), reconnecting with backoff
 * (1 s doubling to 30 s) when the engine restarts or the stream ends. Events are hints: the
 * caller resyncs by listing after a reconnect. Uses a client without an idle timeout.
 */
export class DockerEventStream {
  private stream?: NodeJS.ReadableStream & { destroy?: () => void };
  private timer?: NodeJS.Timeout;
  private stopped = false;
  private delay = 1000;
  private connectedOnce = false;
  connected = false;

  constructor(
    private readonly docker: Docker,
    private readonly handlers: EventStreamHandlers,
  ) {}

  start(): void {
    void this.connect();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.stream?.destroy?.();
  }

  private async connect(): Promise<void> {
    if (this.stopped) return;
    let stream: NodeJS.ReadableStream & { destroy?: () => void };
    try {
      stream = (await this.docker.getEvents({ filters: { type: [...TYPES] } })) as typeof stream;
    } catch (e) {
      this.lost(e as Error);
      return;
    }
    if (this.stopped) {
      stream.destroy?.();
      return;
    }
    this.stream = stream;
    this.connected = true;
    this.delay = 1000;
    this.handlers.onConnected(this.connectedOnce);
    this.connectedOnce = true;
    let buf = '';
    let ended = false;
    const end = (err: Error) => {
      if (ended) return;
      ended = true;
      this.connected = false;
      this.lost(err);
    };
    stream.on('data', (chunk: Buffer) => {
      buf += chunk.toString('utf8');
      for (let i; (i = buf.indexOf('\n')) >= 0; ) {
        const line = buf.slice(0, i).trim();
        buf = buf.slice(i + 1);
        if (!line) continue;
        try {
          const raw = JSON.parse(line) as { Type: string; Action: string; Actor?: { ID?: string; Attributes?: Record<string, string> }; time?: number };
          if (!EVENT_TYPES.has(raw.Type)) continue;
          this.handlers.onEvent({ type: raw.Type as EngineEvent['type'], action: raw.Action, id: raw.Actor?.ID ?? '', attributes: raw.Actor?.Attributes ?? {}, time: raw.time ?? 0 });
        } catch {
          /* a partial line cannot happen after the split; ignore anything unparsable */
        }
      }
    });
    stream.on('end', () => end(new Error('event stream ended')));
    stream.on('close', () => end(new Error('event stream closed')));
    stream.on('error', (e: Error) => end(e));
  }

  private lost(err: Error): void {
    if (this.stopped) return;
    const wait = this.delay;
    this.delay = Math.min(this.delay * 2, 30_000);
    this.handlers.onLost(err, wait);
    this.timer = setTimeout(() => void this.connect(), wait);
  }
}

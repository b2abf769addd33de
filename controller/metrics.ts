import http from 'node:http';
import client from 'prom-client';
import type { PassResult } from './pass.js';

/** Prometheus metrics and /healthz for watch mode (`--metrics-addr 127.0.0.1:9464`). */
export class Metrics {
  readonly registry = new client.Registry();
  private readonly passes = new client.Counter({ name: 'bottled_bottle_passes_total', help: 'Bottle passes by result', labelNames: ['result'], registers: [this.registry] });
  private readonly duration = new client.Histogram({ name: 'bottled_pass_duration_seconds', help: 'Duration of reconcile passes', buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60], registers: [this.registry] });
  private readonly conditions = new client.Gauge({ name: 'bottled_bottles', help: 'Bottles by lifecycle state', labelNames: ['state'], registers: [this.registry] });
  private readonly queue = new client.Gauge({ name: 'bottled_queue_depth', help: 'Bottles waiting for a pass', registers: [this.registry] });
  private readonly dockerErrors = new client.Counter({ name: 'bottled_docker_errors_total', help: 'Failed Docker operations', registers: [this.registry] });
  private server?: http.Server;

  constructor() {
    client.collectDefaultMetrics({ register: this.registry });
  }

  observePass(r: PassResult, seconds: number): void {
    this.duration.observe(seconds);
    for (const x of r.results) {
      this.passes.inc({ result: x.ok ? (x.executed ? 'changed' : 'unchanged') : 'failed' });
      if (!x.ok && (x.reason === 'DockerError' || x.reason === 'DockerUnreachable')) this.dockerErrors.inc();
    }
  }

  setConditions(counts: Record<string, number>): void {
    this.conditions.reset();
    for (const [state, n] of Object.entries(counts)) this.conditions.set({ state }, n);
  }

  setQueueDepth(n: number): void {
    this.queue.set(n);
  }

  async listen(addr: string, healthy: () => boolean): Promise<string> {
    const m = /^(.*):(\d+)$/.exec(addr);
    if (!m) throw new Error(`--metrics-addr ${addr}: write host:port, e.g. 127.0.0.1:9464`);
    this.server = http.createServer((req, res) => {
      if (req.url === '/healthz') {
        const ok = healthy();
        res.writeHead(ok ? 200 : 503, { 'content-type': 'text/plain' }).end(ok ? 'ok\n' : 'unhealthy\n');
      } else if (req.url === '/metrics') {
        this.registry.metrics().then(
          (text) => res.writeHead(200, { 'content-type': this.registry.contentType }).end(text),
          (e: Error) => res.writeHead(500).end(e.message),
        );
      } else res.writeHead(404).end();
    });
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(Number(m[2]), m[1]!.replace(/^\[|\]$/g, ''), resolve);
    });
    const a = this.server.address();
    return typeof a === 'object' && a ? `${a.address}:${a.port}` : addr;
  }

  close(): void {
    this.server?.close();
  }
}

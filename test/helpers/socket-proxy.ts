import net from 'node:net';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';

/**
 * A recording pass-through in front of the Docker socket: counts Engine API requests and keeps
 * their request lines (method + URL), so tests and the bench can measure calls at the socket
 * and check that no secret travels in a URL.
 */
export class DockerSocketProxy {
  readonly socketPath = path.join(os.tmpdir(), `bottled-proxy-${crypto.randomBytes(4).toString('hex')}.sock`);
  readonly requests: string[] = [];
  private server?: net.Server;
  private readonly sockets = new Set<net.Socket>();

  private port = 0;

  constructor(
    private readonly upstream = '/var/run/docker.sock',
    /** Listen on 127.0.0.1 instead of a unix socket: bottled then sees an engine that is not local. */
    private readonly tcp = false,
  ) {}

  get host(): string {
    return this.tcp ? `tcp://127.0.0.1:${this.port}` : `unix://${this.socketPath}`;
  }

  async start(): Promise<this> {
    this.server = net.createServer((client) => {
      const up = net.connect(this.upstream);
      this.sockets.add(client).add(up);
      client.on('close', () => this.sockets.delete(client));
      up.on('close', () => this.sockets.delete(up));
      client.on('data', (d) => {
        for (const m of d.toString('latin1').matchAll(/(?:^|\r\n)(GET|POST|PUT|DELETE|HEAD) (\S+) HTTP\/1\.[01]\r\n/g)) {
          this.requests.push(`${m[1]} ${m[2]}`);
        }
        up.write(d);
      });
      up.pipe(client);
      client.on('error', () => up.destroy());
      up.on('error', () => client.destroy());
      client.on('close', () => up.end());
    });
    if (this.tcp) {
      await new Promise<void>((res) => this.server!.listen(0, '127.0.0.1', res));
      this.port = (this.server.address() as net.AddressInfo).port;
    } else {
      await new Promise<void>((res) => this.server!.listen(this.socketPath, res));
    }
    return this;
  }

  reset(): void {
    this.requests.length = 0;
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((res) => (this.server ? this.server.close(() => res()) : res()));
    fs.rmSync(this.socketPath, { force: true });
  }
}

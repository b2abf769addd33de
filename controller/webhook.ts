import crypto from 'node:crypto';
import http from 'node:http';
import type { Logger } from 'pino';

/** A push notification is small; anything larger is refused unread. */
const MAX_BODY = 1024 * 1024;

/**
 * `POST /hook`: a git server says something was pushed, so fetch now instead of at the next
 * interval. Only a request signed with the shared secret counts: GitHub's
 * `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>`, Gitea's `X-Gitea-Signature` and
 * Forgejo's `X-Forgejo-Signature` (hex HMAC-SHA256), or GitLab's `X-Gitlab-Token` (the secret
 * itself). Anything else is 401 and triggers nothing. The body is never parsed: which ref moved
 * does not matter, the fetch of the ref bottled applies finds out.
 */
export function verifyHook(secret: Buffer, headers: http.IncomingHttpHeaders, body: Buffer): boolean {
  const mac = crypto.createHmac('sha256', secret).update(body).digest();
  const header = (name: string) => {
    const v = headers[name];
    return Array.isArray(v) ? v[0] : v;
  };
  const hex = (v: string | undefined) => (v && /^[0-9a-fA-F]{64}$/.test(v) ? Buffer.from(v, 'hex') : undefined);
  const github = header('x-hub-signature-256');
  const candidates = [github?.startsWith('sha256=') ? hex(github.slice(7)) : undefined, hex(header('x-gitea-signature')), hex(header('x-forgejo-signature'))];
  if (candidates.some((c) => c && crypto.timingSafeEqual(c, mac))) return true;
  const token = header('x-gitlab-token');
  if (token !== undefined) {
    const a = crypto.createHash('sha256').update(token).digest();
    const b = crypto.createHash('sha256').update(secret).digest();
    return crypto.timingSafeEqual(a, b);
  }
  return false;
}

export async function startWebhook(addr: string, secret: Buffer, onPush: () => void, log: Logger): Promise<{ close: () => Promise<void>; address: string }> {
  const m = /^(.+):(\d+)$/.exec(addr);
  if (!m) throw new Error(`--webhook-addr ${addr}: HOST:PORT, e.g. 127.0.0.1:9465`);
  const server = http.createServer((req, res) => {
    if (req.method !== 'POST' || (req.url ?? '').split('?')[0] !== '/hook') {
      res.writeHead(404).end();
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    req.on('data', (c: Buffer) => {
      if (tooLarge) return;
      size += c.length;
      if (size > MAX_BODY) {
        tooLarge = true;
        chunks.length = 0;
        res.writeHead(413, { Connection: 'close' }).end(() => req.destroy());
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => {
      if (tooLarge) return;
      if (!verifyHook(secret, req.headers, Buffer.concat(chunks))) {
        log.warn({ remote: req.socket.remoteAddress }, 'webhook: missing or wrong signature: ignored');
        res.writeHead(401).end();
        return;
      }
      log.info('webhook: push notification: fetching now');
      onPush();
      res.writeHead(202).end();
    });
  });
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(Number(m[2]), m[1]!.replace(/^\[|\]$/g, ''), resolve);
  });
  const a = server.address() as { address: string; port: number };
  return { address: `${a.address}:${a.port}`, close: () => new Promise<void>((r) => server.close(() => r())) };
}

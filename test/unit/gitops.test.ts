import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { checkedUrl, isRemoteUrl } from '../../specs/git-remote.js';
import { verifyHook } from '../../controller/webhook.js';

test('which --git values are remotes', () => {
  for (const r of ['https://gitea.example.com/o/r.git', 'http://127.0.0.1:3000/r.git', 'ssh://git@h:2222/o/r.git', 'git@github.com:o/r.git', 'git://h/r.git', 'file:///srv/r.git', 'host:path/r.git']) assert.ok(isRemoteUrl(r), r);
  for (const l of ['/srv/r.git', './r', '../r', 'repo', 'C:\\\\r']) assert.ok(!isRemoteUrl(l), l);
});

test('a password in the URL is refused without repeating it', () => {
  assert.equal(checkedUrl('https://user@h/r.git'), 'https://user@h/r.git');
  assert.throws(() => checkedUrl('https://user:s3cret@h/r.git'), (e: Error) => /password in the URL/.test(e.message) && !e.message.includes('s3cret'));
});

test('webhook signatures: GitHub, Gitea, Forgejo, GitLab; anything else is refused', () => {
  const secret = Buffer.from('0123456789abcdef0123');
  const body = Buffer.from('{"ref":"refs/heads/main"}');
  const mac = crypto.createHmac('sha256', secret).update(body).digest('hex');
  assert.ok(verifyHook(secret, { 'x-hub-signature-256': `sha256=${mac}` }, body));
  assert.ok(verifyHook(secret, { 'x-gitea-signature': mac }, body));
  assert.ok(verifyHook(secret, { 'x-forgejo-signature': mac }, body));
  assert.ok(verifyHook(secret, { 'x-gitlab-token': secret.toString() }, body));
  assert.ok(!verifyHook(secret, {}, body));
  assert.ok(!verifyHook(secret, { 'x-hub-signature-256': mac }, body), 'the sha256= prefix is required');
  assert.ok(!verifyHook(secret, { 'x-gitea-signature': mac.replace(/.$/, (c) => (c === '0' ? '1' : '0')) }, body));
  assert.ok(!verifyHook(secret, { 'x-gitea-signature': mac }, Buffer.from('{"ref":"other"}')), 'signed for another body');
  assert.ok(!verifyHook(secret, { 'x-gitlab-token': 'wrong' }, body));
});

// `--verify-commits FILE`: only a commit signed by a key in an ssh "allowed signers" file (the
// format of git's gpg.ssh.allowedSignersFile) is applied. Whoever can push to the specs repo
// decides what an agent reaches, so a server (or a careless colleague) must not be able to.
import { execa } from 'execa';
import { gitEnv } from './git-source.js';

export type Verdict = { ok: true; signer: string } | { ok: false; problem: string };

export async function verifyCommit(repo: string, commit: string, allowedSigners: string): Promise<Verdict> {
  const r = await execa(
    'git',
    ['-C', repo, '-c', 'gpg.format=ssh', '-c', `gpg.ssh.allowedSignersFile=${allowedSigners}`, 'verify-commit', '--raw', commit],
    { env: gitEnv(repo), reject: false, stdin: 'ignore' },
  );
  const text = `${r.stderr}\n${r.stdout}`;
  if (r.exitCode === 0) {
    const who = /Good "git" signature for (\S+) with (\S+) key (\S+)/.exec(text);
    return { ok: true, signer: who ? `${who[1]} (${who[2]} ${who[3]})` : 'an allowed key' };
  }
  if (/no signature|does not have a GPG signature|No signature found/i.test(text) || text.trim() === '') return { ok: false, problem: 'it is not signed' };
  if (/No principal matched|not an allowed signer|no principal/i.test(text)) return { ok: false, problem: 'it is signed by a key that is not in the allowed signers file' };
  if (/Could not verify signature|Bad signature|signature verification failed/i.test(text)) return { ok: false, problem: 'its signature does not verify' };
  if (/gpg/i.test(text) && !/ssh/i.test(text)) return { ok: false, problem: 'it is signed with GPG, and only ssh signatures are checked' };
  return { ok: false, problem: `its signature could not be checked (${text.trim().split('\n').pop()})` };
}

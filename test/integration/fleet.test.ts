// One GitOps repository for a fleet: two hosts (two lab engines of the test's own), each with its
// own bottled serving `--selector host=<it>`. Moving a bottle is one commit; a label typo is
// caught by `validate --fleet` before it leaves a bottle nowhere.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { World } from '../helpers/harness.js';
import { TestRepo } from '../helpers/git-servers.js';
import { Lab, type LabNode } from '../helpers/lab-engine.js';

const labelled = (name: string, host: string) =>
  `apiVersion: bottled.dev/v1\nkind: Bottle\nmetadata:\n  name: ${name}\n  labels: {host: ${host}}\nspec:\n  agent:\n    image: bottled/busybox:local\n`;

describe('a fleet of two hosts fed from one repository', () => {
  let lab: Lab;
  let repo: TestRepo;
  const hosts: { name: string; w: World; node: LabNode }[] = [];

  before(async () => {
    lab = await Lab.start(2, { images: ['bottled/busybox:local'] });
    for (const [i, name] of ['a', 'b'].entries()) hosts.push({ name, w: await new World(`fleet${name}`).setup(), node: lab.nodes[i]! });
    repo = await new TestRepo(path.join(hosts[0]!.w.stateDir, '..', 'repo')).init();
    await repo.write('bottles.d/one.yaml', labelled('one', 'a'));
    await repo.write('bottles.d/two.yaml', labelled('two', 'b'));
    // Host a keeps one: a selection that matches nothing at all prunes nothing (a typo guard).
    await repo.write('bottles.d/stay.yaml', labelled('stay', 'a'));
    repo.commitAndPush('three bottles on two hosts');
  });
  after(async () => {
    await lab?.stop();
    for (const h of hosts) await h.w.cleanup();
  });

  const on = (h: (typeof hosts)[number], args: string[]) => h.w.run([...args, '--git', repo.bare, '--ref', 'main', '--selector', `host=${h.name}`, '--docker-host', h.node.host]);
  const running = async (h: (typeof hosts)[number]) =>
    (await h.node.docker.listContainers({ filters: { label: [`bottled.instance=${h.w.instance}`, 'bottled.role=agent'] } })).map((c) => c.Labels['bottled.bottle']).sort();

  test('each host runs only the bottles that name it', async () => {
    for (const h of hosts) assert.equal((await on(h, ['reconcile', '--once'])).code, 0);
    assert.deepEqual(await running(hosts[0]!), ['one', 'stay']);
    assert.deepEqual(await running(hosts[1]!), ['two']);
    const status = await hosts[0]!.w.run(['status']);
    assert.match(status.stdout, /Serves: the bottles matching --selector host=a/);
  });

  test('moving a bottle is one commit: plan says so on the host it leaves, and each host applies its half', async () => {
    await repo.write('bottles.d/one.yaml', labelled('one', 'b'));
    repo.commitAndPush('move one to host b');
    const [a, b] = hosts as [(typeof hosts)[number], (typeof hosts)[number]];
    const plan = await on(a, ['plan']);
    assert.match(plan.stdout, /for another host: it does not match --selector host=a/);
    assert.equal((await on(a, ['reconcile', '--once'])).code, 0);
    assert.equal((await on(b, ['reconcile', '--once'])).code, 0);
    assert.deepEqual(await running(a), ['stay']);
    assert.deepEqual(await running(b), ['one', 'two']);
  });

  test('a label typo: validate --fleet names the bottle no host would run, and that host prunes nothing for it', async () => {
    const fleet = path.join(hosts[0]!.w.stateDir, '..', 'fleet');
    await fs.writeFile(fleet, 'host=a\nhost=b\n');
    await repo.write('bottles.d/three.yaml', labelled('three', 'c'));
    repo.commitAndPush('a bottle for a host that does not exist');
    const v = await hosts[0]!.w.run(['validate', '--git', repo.bare, '--ref', 'main', '--fleet', fleet]);
    assert.equal(v.code, 1, v.stderr);
    assert.match(v.stdout, /three\.yaml:\d+:\d+: Bottle three \(labels: host=c\) matches no selector of the fleet: no host would run it/);
    assert.doesNotMatch(v.stdout, /Bottle (one|two|stay) /);
  });
});

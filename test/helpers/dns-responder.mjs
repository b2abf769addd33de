// A logging DNS responder for the DNS tests, run inside a lab network namespace (no packet leaves
// the machine): every query's name is appended to LOG, and an A query is answered with ANSWER.
//   node dns-responder.mjs ADDR PORT LOG ANSWER
import dgram from 'node:dgram';
import fs from 'node:fs';

const [addr, port, log, answer] = process.argv.slice(2);
const sock = dgram.createSocket('udp4');
sock.on('message', (msg, rinfo) => {
  if (msg.length < 12) return;
  let i = 12;
  const labels = [];
  while (i < msg.length && msg[i] !== 0) {
    const n = msg[i];
    labels.push(msg.subarray(i + 1, i + 1 + n).toString('latin1'));
    i += n + 1;
  }
  const qtype = msg.readUInt16BE(i + 1);
  const question = msg.subarray(12, i + 5);
  fs.appendFileSync(log, `${labels.join('.')} ${qtype}\n`);
  const header = Buffer.alloc(12);
  msg.copy(header, 0, 0, 2); // id
  header.writeUInt16BE(0x8180, 2); // response, recursion desired and available, no error
  header.writeUInt16BE(1, 4);
  header.writeUInt16BE(qtype === 1 ? 1 : 0, 6);
  const parts = [header, question];
  if (qtype === 1) {
    const rr = Buffer.alloc(16);
    rr.writeUInt16BE(0xc00c, 0); // name: the question's
    rr.writeUInt16BE(1, 2); // A
    rr.writeUInt16BE(1, 4); // IN
    rr.writeUInt32BE(5, 6); // ttl
    rr.writeUInt16BE(4, 10);
    answer.split('.').forEach((o, k) => rr.writeUInt8(Number(o), 12 + k));
    parts.push(rr);
  }
  sock.send(Buffer.concat(parts), rinfo.port, rinfo.address);
});
sock.bind(Number(port), addr, () => fs.appendFileSync(log, 'ready\n'));

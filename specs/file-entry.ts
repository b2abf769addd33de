// `files:` entries and their `onChange` action.
import path from 'node:path';
import { z } from 'zod';
import type { FileSpec, OnChange } from './model.js';
import { didYouMean } from './did-you-mean.js';
import { commandList, fileMode, signalName, strictObject } from './fields.js';

const ON_CHANGE_FORMS = 'restart, recreate, {signal: NAME} or {exec: [command, args...]}';

export const onChange = z.union(
  [
    z.enum(['restart', 'recreate']).transform((type): OnChange => ({ type })),
    strictObject({ signal: signalName }).transform(({ signal }): OnChange => ({ type: 'signal', signal })),
    strictObject({ exec: commandList }).transform(({ exec }): OnChange => ({ type: 'exec', command: exec })),
  ],
  { error: (issue) => onChangeMessage(issue.input) },
);

function onChangeMessage(input: unknown): string {
  if (typeof input === 'string') {
    return `${JSON.stringify(input)} is not an onChange action${didYouMean(input, ['restart', 'recreate'])}: use ${ON_CHANGE_FORMS}`;
  }
  const keys = typeof input === 'object' && input !== null && !Array.isArray(input) ? Object.keys(input) : [];
  const [onlyKey] = keys;
  if (keys.length === 1 && onlyKey !== undefined) {
    return `unknown action ${JSON.stringify(onlyKey)}${didYouMean(onlyKey, ['signal', 'exec'])}: use ${ON_CHANGE_FORMS}`;
  }
  return `must be one of ${ON_CHANGE_FORMS}`;
}

const containerPath = z.string().superRefine((p, ctx) => {
  const problem = !p.startsWith('/')
    ? 'must be an absolute path inside the container, like /etc/app.conf'
    : p === '/' || p.endsWith('/') || path.posix.normalize(p) !== p
      ? 'must be a plain absolute path to a file (no "..", ".", "//" or trailing "/")'
      : p.includes(':')
        ? 'must not contain ":" (Docker reads a bind mount as source:target:options)'
        : p.includes('\0')
          ? 'must not contain a NUL character'
          : undefined;
  if (problem) ctx.addIssue({ code: 'custom', input: p, message: problem });
});

const DEFAULT_MODE = 0o644;

const fileOwnerId = z
  .number()
  .int({ error: 'must be a whole number (a numeric id: names are not known outside the image)' })
  .min(0, { error: 'must be 0 or more' })
  .max(2 ** 31 - 1, { error: 'must be at most 2147483647' });

/**
 * A file entry as the schema leaves it: inline `content` is already bytes; for `source:`
 * the content is empty here and the loader fills it in (reading files is I/O, not validation).
 */
export const fileEntry = strictObject({
  path: containerPath.describe('absolute path inside the container or machine'),
  source: z
    .string()
    .min(1, { error: 'must not be empty' })
    .describe('file to copy, relative to the spec file (exactly one of source and content)')
    .optional(),
  content: z.string().describe('inline file content (exactly one of source and content)').optional(),
  mode: fileMode.describe('octal permission bits as a quoted string, e.g. "0644"').optional(),
  uid: fileOwnerId.describe("owner as the container sees it (default: the container's user)").optional(),
  gid: fileOwnerId.describe("group as the container sees it (default: the container user's group, else uid)").optional(),
  onChange: onChange.describe(`what to do when the content changes: ${ON_CHANGE_FORMS} (default recreate)`).optional(),
})
  .superRefine((file, ctx) => {
    if (file.source !== undefined && file.content !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['content'], params: { at: 'key' }, input: file, message: 'give either source or content, not both' });
    } else if (file.source === undefined && file.content === undefined) {
      ctx.addIssue({ code: 'custom', input: file, message: 'needs either source: (a file next to the spec) or content: (inline text)' });
    }
  })
  .transform(
    (file): FileSpec => ({
      path: file.path,
      content: Buffer.from(file.content ?? '', 'utf8'),
      ...(file.source !== undefined && { source: file.source }),
      mode: file.mode ?? DEFAULT_MODE,
      ...(file.uid !== undefined && { uid: file.uid }),
      ...(file.gid !== undefined && { gid: file.gid }),
      onChange: file.onChange ?? { type: 'recreate' },
    }),
  );

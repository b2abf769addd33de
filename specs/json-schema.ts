// JSON Schema of one spec document, for editors (yaml-language-server: `# yaml-language-server:
// $schema=...`). It describes what may be written (the schema's input side); rules that need
// more than one field or the file system (ip inside subnet, placeholders, source files) are
// checked by `bottled validate` only.
import { z } from 'zod';
import { bottleDocumentSchema, sharedSidecarDocumentSchema } from './schema.js';

export const SPEC_SCHEMA_ID = 'https://bottled.dev/schemas/spec-v1.json';

const anyDocument = z.union([
  bottleDocumentSchema.meta({ title: 'Bottle' }),
  sharedSidecarDocumentSchema.meta({ title: 'SharedSidecar' }),
]);

export function specJsonSchema(): Record<string, unknown> {
  const generated = z.toJSONSchema(
    anyDocument,
    // io 'input': defaults make fields optional and transforms are described by what they accept;
    // unrepresentable 'any': a refinement zod cannot express becomes "anything" instead of throwing.
    { io: 'input', unrepresentable: 'any', target: 'draft-2020-12' },
  ) as Record<string, unknown>;
  // The kinds are disjoint (`kind` is a const in each), so exactly one branch matches: say so,
  // which lets editors report the errors of that branch instead of a vague "no match".
  const { anyOf, $schema, ...rest } = generated;
  return {
    $schema,
    $id: SPEC_SCHEMA_ID,
    title: 'bottled spec v1 document',
    description: 'One YAML document of a bottled spec file: kind Bottle or SharedSidecar.',
    oneOf: anyOf,
    ...rest,
  };
}

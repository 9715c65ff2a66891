/**
 * Config problems as users see them: `config: <path>: <message>` lines, friendly messages for zod's
 * generic issues, and "did you mean" hints for unknown keys (schema.ts defines the shape).
 */
import { z } from 'zod';
import { SvnicError } from '../hypervisor/errors.js';

export interface ConfigIssue {
  /** Dotted path of the key in the file ('' = the whole file). */
  path: string;
  message: string;
}

/** CONFIG_INVALID with every issue found; the message has one `config: path: message` line each. */
export class ConfigError extends SvnicError {
  readonly issues: ConfigIssue[];
  constructor(issues: ConfigIssue[]) {
    super('CONFIG_INVALID', issues.map(formatIssue).join('\n'));
    this.name = 'ConfigError';
    this.issues = issues;
  }
}

export function formatIssue(i: ConfigIssue): string {
  return `config: ${i.path === '' ? '(top level)' : i.path}: ${i.message}`;
}

export const joinPath = (path: readonly PropertyKey[]): string => path.map(String).join('.');

// ---------------------------------------------------------------------------------------------
// Issue messages

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}...` : v);
  return String(v);
}

const EXPECTED: Record<string, string> = {
  string: 'a string', number: 'a number', int: 'an integer', boolean: 'true or false', object: 'a mapping',
  record: 'a mapping', array: 'a list', null: 'null',
};

/** Messages for zod's generic issues (schema-specific messages above take precedence). */
export function errorMap(iss: z.core.$ZodRawIssue): string | undefined {
  switch (iss.code) {
    case 'invalid_type':
      if (iss.input === undefined) return 'required';
      return `must be ${EXPECTED[iss.expected] ?? iss.expected}, got ${describe(iss.input)}`;
    case 'too_big': {
      const max = String(iss.maximum);
      if (iss.origin === 'array') return `must have at most ${max} entries`;
      if (iss.origin === 'string') return `must be at most ${max} characters`;
      return `must be ${iss.inclusive ? '<=' : '<'} ${max}`;
    }
    case 'too_small': {
      const min = String(iss.minimum);
      if (iss.origin === 'array') return `must have at least ${min} ${min === '1' ? 'entry' : 'entries'}`;
      if (iss.origin === 'string') return min === '1' ? 'must not be empty' : `must be at least ${min} characters`;
      return `must be ${iss.inclusive ? '>=' : '>'} ${min}`;
    }
    case 'invalid_value':
      return `must be one of ${iss.values.map((v) => JSON.stringify(v)).join(', ')}, got ${describe(iss.input)}`;
    case 'invalid_union':
      if ('options' in iss && Array.isArray(iss.options)) {
        // a discriminated union: the path ends at the discriminator, the input is the whole object
        const disc = 'discriminator' in iss && typeof iss.discriminator === 'string' ? iss.discriminator : undefined;
        const input = disc && iss.input !== null && typeof iss.input === 'object' ? (iss.input as Record<string, unknown>)[disc] : iss.input;
        if (input === undefined) return 'required';
        return `must be one of ${iss.options.map((v) => JSON.stringify(v)).join(', ')}, got ${describe(input)}`;
      }
      return undefined;
    default:
      return undefined;
  }
}

// Known keys at a path, for "did you mean" hints on unknown keys. Walks zod's schema definitions.
type AnySchema = { _zod: { def: Record<string, unknown> & { type: string } } };

function unwrap(s: AnySchema): AnySchema[] {
  const d = s._zod.def;
  switch (d.type) {
    case 'optional': case 'nullable': case 'default': case 'prefault': case 'readonly': case 'catch': case 'nonoptional':
      return unwrap(d.innerType as AnySchema);
    case 'pipe':
      return [...unwrap(d.in as AnySchema), ...unwrap(d.out as AnySchema)];
    case 'union':
      return (d.options as AnySchema[]).flatMap(unwrap);
    default:
      return [s];
  }
}

function knownKeys(root: AnySchema, path: readonly PropertyKey[]): string[] {
  let at = unwrap(root);
  for (const seg of path) {
    at = at.flatMap((s) => {
      const d = s._zod.def;
      if (d.type === 'object') {
        const child = (d.shape as Record<string, AnySchema>)[String(seg)];
        return child ? unwrap(child) : [];
      }
      if (d.type === 'array') return unwrap(d.element as AnySchema);
      if (d.type === 'record') return unwrap(d.valueType as AnySchema);
      return [];
    });
  }
  const keys = at.flatMap((s) => (s._zod.def.type === 'object' ? Object.keys(s._zod.def.shape as object) : []));
  return [...new Set(keys)];
}

/** Edit distance counting a swap of two neighbours as one edit (so "mut" is 1 from "mtu"), ignoring case. */
function editDistance(x: string, y: string): number {
  const a = x.toLowerCase();
  const b = y.toLowerCase();
  const d = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}

function unknownKeyMessage(key: string, known: string[]): string {
  let best: string | undefined;
  let bestD = Infinity;
  for (const k of known) {
    const d = editDistance(key, k);
    if (d < bestD) [best, bestD] = [k, d];
  }
  const near = best !== undefined && bestD <= Math.max(1, Math.floor(best.length / 3));
  const list = known.length ? `; allowed here: ${known.join(', ')}` : '';
  return near ? `unknown key (did you mean "${best}"?)` : `unknown key${list}`;
}

export function shapeIssues(error: z.ZodError, root: unknown): ConfigIssue[] {
  const out: ConfigIssue[] = [];
  for (const iss of error.issues) {
    if (iss.code === 'unrecognized_keys') {
      const known = knownKeys(root as AnySchema, iss.path);
      for (const k of iss.keys) out.push({ path: joinPath([...iss.path, k]), message: unknownKeyMessage(k, known) });
    } else {
      out.push({ path: joinPath(iss.path), message: iss.message });
    }
  }
  return out;
}


/**
 * JSON Schemas of the API. The VIF body schemas are derived from the config schema
 * (src/config/schema.ts, zod -> JSON Schema), so a field added to a VIF's config (QoS, ...) is
 * accepted by the API and documented in /v1/openapi.json without touching this file.
 */
import { z } from 'zod';
import { configSchema } from '../config/schema.js';

type Json = Record<string, unknown>;

const stripDefaults = (s: unknown): unknown => {
  if (Array.isArray(s)) return s.map(stripDefaults);
  if (typeof s !== 'object' || s === null) return s;
  return Object.fromEntries(Object.entries(s).filter(([k]) => k !== 'default' && k !== '$schema').map(([k, v]) => [k, stripDefaults(v)]));
};

const configJson = z.toJSONSchema(configSchema, { io: 'input', target: 'draft-7', unrepresentable: 'any' }) as Json;
const guestItems = ((configJson.properties as Json).guests as Json).items as Json;
const vifItems = stripDefaults(((guestItems.properties as Json).vifs as Json).items) as Json & { properties: Json };

export const NAME = { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$', description: 'a name: 1-64 letters, digits, "_", "." or "-"' };

/** POST /v1/vifs: a VIF as in the config file, plus the guest to plug it into. */
export const vifCreateBody = {
  ...vifItems,
  properties: { guest: { ...NAME, description: 'the guest the VIF is plugged into (must exist)' }, ...vifItems.properties },
  required: ['guest'],
  additionalProperties: false,
  description: 'A VIF, as in the config file (docs/config.md), plus `guest`. Without `name`: <guest>-eth<n>; without `mac`: one is chosen and kept.',
};

/** PATCH /v1/vifs/{name}: any VIF field but its name. Live fields change in place; others replace the VIF. */
export const vifPatchBody = {
  type: 'object',
  properties: Object.fromEntries(Object.entries(vifItems.properties).filter(([k]) => k !== 'name')),
  additionalProperties: false,
  minProperties: 1,
  description: 'Fields to change. mac, mtu (up to the buffer size), linkUp, promiscuous, multicast, coalesce change in place; device, segment, queueSize, engine (or an MTU above the buffers) replace the VIF.',
};

export const configBody = {
  type: 'object',
  description: 'A whole config document (docs/config.md) as JSON; YAML with Content-Type application/yaml. Checked by the config schema: problems come back as CONFIG_INVALID with one issue per path.',
  additionalProperties: true,
};

export const errorSchema = {
  type: 'object',
  properties: {
    code: { type: 'string', description: 'stable error code (docs/daemon.md lists them)' },
    message: { type: 'string' },
    issues: { type: 'array', items: { type: 'object', properties: { path: { type: 'string' }, message: { type: 'string' } } } },
  },
  required: ['code', 'message'],
  additionalProperties: true,
};

const anyObject = { type: 'object', additionalProperties: true };

export const errors = (...codes: number[]) => Object.fromEntries(codes.map((c) => [c, errorSchema]));

export const mutationQuery = {
  type: 'object',
  properties: { dryRun: { type: 'string', enum: ['true', 'false', '1', '0'], description: 'plan and report, change nothing' } },
  additionalProperties: false,
};

export const ifMatchHeader = {
  type: 'object',
  properties: {
    'if-match': { type: 'string', pattern: '^(W/)?"?[0-9]+"?$', description: 'the generation the change is based on (GET /v1/config ETag); mismatch -> 409 GENERATION_MISMATCH' },
    authorization: { type: 'string', description: '`Bearer <token>`, required for mutating calls on the TCP listener' },
  },
};

export const nameParams = { type: 'object', properties: { name: NAME }, required: ['name'], additionalProperties: false };

export const applyResult = {
  type: 'object',
  properties: {
    generation: { type: 'integer' },
    source: { type: 'string' },
    dryRun: { type: 'boolean' },
    summary: { type: 'array', items: { type: 'string' } },
    changes: { type: 'array', items: anyObject },
    vif: anyObject,
  },
  additionalProperties: true,
};

export { anyObject };

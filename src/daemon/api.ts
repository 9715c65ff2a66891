/**
 * The REST API (Fastify 5): JSON Schema on every route, OpenAPI at /v1/openapi.json, errors as
 * JSON `{code, message}` with stable codes (errors.ts). The same app serves the unix socket (no
 * token) and, optionally, a loopback TCP port (bearer token on every mutating call).
 */
import Fastify, { type FastifyError, type FastifyInstance, type FastifyRequest } from 'fastify';
import swagger from '@fastify/swagger';
import type { Registry } from 'prom-client';
import { parseConfigText } from '../config/load.js';
import { ApiError, toErrorBody } from './errors.js';
import { isMutating, tokenChecker } from './auth.js';
import type { Controller } from './controller.js';
import type { Sampler } from './sampler.js';
import {
  anyObject, applyResult, configBody, errors, ifMatchHeader, mutationQuery, nameParams, vifCreateBody, vifPatchBody,
} from './api-schemas.js';
import { deviceList, guestList, uplinkList, vifList, vifView } from './views.js';
import { registerStatic } from './static.js';

export const API_VERSION = '1.0.0';

export interface AppOptions {
  ctl: Controller;
  sampler: Sampler;
  metrics: Registry;
  /** Require this bearer token on mutating calls (the TCP listener); null: none (unix socket). */
  token: string | null;
  log?: (msg: string) => void;
  startedAt?: number;
}

type Obj = Record<string, unknown>;

/** Name the first JSON Schema violation with a stable code. */
function validationError(e: FastifyError): ApiError {
  const v = e.validation?.[0];
  const where = `${e.validationContext ?? 'request'}${v?.instancePath ? v.instancePath.replace(/\//g, '.') : ''}`;
  if (!v) return new ApiError('BAD_REQUEST', 400, e.message);
  const p = v.params as Obj;
  switch (v.keyword) {
    case 'additionalProperties':
      return new ApiError('UNKNOWN_FIELD', 400, `${where}: unknown field "${String(p.additionalProperty)}"; see /v1/openapi.json for the fields allowed here`, { field: `${where}.${String(p.additionalProperty)}` });
    case 'minimum': case 'maximum': case 'exclusiveMinimum': case 'exclusiveMaximum':
    case 'minLength': case 'maxLength': case 'minItems': case 'maxItems': case 'minProperties': case 'maxProperties':
      return new ApiError('OUT_OF_RANGE', 400, `${where}: ${v.message}`, { field: where });
    case 'type':
      return new ApiError('BAD_TYPE', 400, `${where}: ${v.message}`, { field: where });
    case 'required':
      return new ApiError('MISSING_FIELD', 400, `${where}: missing field "${String(p.missingProperty)}"`, { field: `${where}.${String(p.missingProperty)}` });
    case 'pattern': case 'format': case 'enum': case 'const':
      return new ApiError('BAD_FORMAT', 400, `${where}: ${v.message}`, { field: where });
    default:
      return new ApiError('BAD_REQUEST', 400, `${where}: ${v.message}`, { field: where });
  }
}

function mapFastifyError(e: FastifyError): unknown {
  if (e.validation) return validationError(e);
  switch (e.code) {
    case 'FST_ERR_CTP_INVALID_JSON_BODY': case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new ApiError('MALFORMED_JSON', 400, `the body is not valid JSON: ${e.message}`);
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new ApiError('UNSUPPORTED_MEDIA_TYPE', 415, 'send JSON (Content-Type: application/json), or YAML to PUT /v1/config (application/yaml)');
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new ApiError('BODY_TOO_LARGE', 413, 'the body is larger than 1 MiB');
  }
  if (e instanceof SyntaxError && e.statusCode === 400) return new ApiError('MALFORMED_JSON', 400, `the body is not valid JSON: ${e.message}`);
  if (e.statusCode && e.statusCode >= 400 && e.statusCode < 500 && !(e instanceof ApiError) && !('issues' in e)) {
    return new ApiError('BAD_REQUEST', e.statusCode, e.message);
  }
  return e;
}

const flag = (v: unknown): boolean => v === 'true' || v === '1';

function mutationOpts(req: FastifyRequest): { dryRun: boolean; ifGeneration?: number } {
  const q = req.query as Obj;
  const im = req.headers['if-match'];
  const n = typeof im === 'string' ? Number(im.replace(/^W\//, '').replace(/"/g, '')) : undefined;
  return { dryRun: flag(q?.dryRun), ...(n !== undefined ? { ifGeneration: n } : {}) };
}

export async function buildApp(o: AppOptions): Promise<FastifyInstance> {
  const { ctl, sampler } = o;
  const app = Fastify({
    logger: false,
    bodyLimit: 1 << 20,
    ajv: { customOptions: { removeAdditional: false, useDefaults: false, coerceTypes: false, allErrors: false } },
  });
  const check = o.token ? tokenChecker(o.token) : null;

  app.setErrorHandler((err, _req, reply) => {
    const { status, body } = toErrorBody(mapFastifyError(err as FastifyError));
    if (status >= 500) o.log?.(`error: ${(err as Error).stack ?? String(err)}`);
    if (status === 401) reply.header('www-authenticate', 'Bearer');
    void reply.code(status).type('application/json').send(body);
  });
  app.setNotFoundHandler((req, reply) => {
    void reply.code(404).send({ code: 'NOT_FOUND', message: `no route ${req.method} ${req.url.split('?')[0]}; see /v1/openapi.json` });
  });
  app.addHook('onRequest', async (req) => {
    if (check && isMutating(req.method)) check(req.headers.authorization);
  });
  app.addContentTypeParser(['application/yaml', 'application/x-yaml', 'text/yaml'], { parseAs: 'string' }, (_req, body, done) => {
    try {
      done(null, parseConfigText(String(body), 'request body').data);
    } catch (e) {
      done(e as Error, undefined);
    }
  });

  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'svnicd', version: API_VERSION,
        description: 'The svnic daemon: devices, VIFs, guests, uplinks and counters of a self-virtualized NIC. Errors are `{code, message}` (docs/daemon.md).',
      },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
    },
  });

  const R = (tag: string, summary: string, extra: Obj = {}) => ({ schema: { tags: [tag], summary, ...extra } });
  const list = (description: string) => ({ 200: { type: 'array', description, items: anyObject } });
  const mutating = { security: [{ bearer: [] }], headers: ifMatchHeader, querystring: mutationQuery };

  app.get('/v1/openapi.json', R('meta', 'This OpenAPI document', { response: { 200: anyObject } }), async () => app.swagger());
  app.get('/v1/health', R('meta', 'Liveness and the state generation', { response: { 200: anyObject } }), async () => ({
    ok: true, pid: process.pid, version: API_VERSION, generation: ctl.generation,
    uptimeS: Math.round((Date.now() - (o.startedAt ?? Date.now())) / 1000), lastChange: ctl.history[ctl.history.length - 1] ?? null,
  }));

  app.get('/v1/devices', R('devices', 'Devices with their settings and counters', { response: list('devices') }), async () => deviceList(ctl));
  app.get('/v1/devices/:name', R('devices', 'One device', { params: nameParams, response: { 200: anyObject, ...errors(404) } }), async (req) => {
    const { name } = req.params as { name: string };
    const d = deviceList(ctl).find((x) => x.name === name);
    if (!d) throw new ApiError('NO_SUCH_DEVICE', 404, `no device "${name}"; list devices with GET /v1/devices`);
    return d;
  });
  app.get('/v1/uplinks', R('devices', 'Uplinks of the devices and their counters', { response: list('uplinks') }), async () => uplinkList(ctl));
  app.get('/v1/guests', R('guests', 'Guests and their state', { response: list('guests') }), async () => guestList(ctl));

  app.get('/v1/vifs', R('vifs', 'VIFs with settings, state and counters', { response: list('VIFs') }), async () => vifList(ctl));
  app.get('/v1/vifs/:name', R('vifs', 'One VIF', { params: nameParams, response: { 200: anyObject, ...errors(404) } }), async (req) => {
    const { name } = req.params as { name: string };
    const r = ctl.runtime.vifs.get(name);
    if (!r) throw new ApiError('NO_SUCH_VIF', 404, `no VIF "${name}"; list VIFs with GET /v1/vifs`);
    return vifView(ctl, r);
  });
  app.post('/v1/vifs', R('vifs', 'Create a VIF and plug it into a guest', { ...mutating, body: vifCreateBody, response: { 201: applyResult, 200: applyResult, ...errors(400, 401, 404, 409, 415, 422, 503) } }), async (req, reply) => {
    const opts = mutationOpts(req);
    const r = await ctl.addVif(req.body as Obj & { guest: string }, opts);
    const v = ctl.runtime.vifs.get(r.vif);
    void reply.code(opts.dryRun ? 200 : 201);
    return { ...r, vif: v && !opts.dryRun ? vifView(ctl, v) : { name: r.vif } };
  });
  app.patch('/v1/vifs/:name', R('vifs', 'Change a VIF (in place where possible, else it is replaced)', { ...mutating, params: nameParams, body: vifPatchBody, response: { 200: applyResult, ...errors(400, 401, 404, 409, 415, 422, 503) } }), async (req) => {
    const { name } = req.params as { name: string };
    const r = await ctl.setVif(name, req.body as Obj, mutationOpts(req));
    const v = ctl.runtime.vifs.get(name);
    return { ...r, vif: v ? vifView(ctl, v) : { name } };
  });
  app.delete('/v1/vifs/:name', R('vifs', 'Unplug and destroy a VIF', { ...mutating, params: nameParams, response: { 200: applyResult, ...errors(401, 404, 409, 422, 503) } }), async (req) =>
    ctl.removeVif((req.params as { name: string }).name, mutationOpts(req)));

  app.get('/v1/counters', R('counters', 'Raw counters of every VIF and engine (shared memory, read now)', { response: { 200: anyObject } }), async () => ({
    t: Date.now(),
    vifs: Object.fromEntries([...ctl.runtime.vifs].filter(([, r]) => r.vif.state !== 'destroyed').map(([n, r]) => [n, r.vif.counters()])),
    devices: Object.fromEntries([...ctl.runtime.devices].map(([n, d]) => [n, {
      unaccounted: d.device.unaccounted(),
      engines: Array.from({ length: d.device.engineCount }, (_, i) => d.device.engineCounters(i)),
    }])),
  }));
  app.get('/v1/stats', R('counters', 'Per-VIF rates and engine utilisation over the latest sampling interval', { response: { 200: anyObject } }), async () => sampler.latest());
  app.get('/v1/stats/history', R('counters', 'The last samples of /v1/stats, oldest first', {
    querystring: { type: 'object', properties: { n: { type: 'string', pattern: '^[0-9]{1,4}$' } }, additionalProperties: false },
    response: { 200: { type: 'array', items: anyObject } },
  }), async (req) => sampler.history(Number((req.query as Obj).n ?? 120)));

  app.get('/v1/config', R('config', 'The desired state (a config document) and its generation (also the ETag)', { response: { 200: anyObject } }), async (_req, reply) => {
    void reply.header('etag', `"${ctl.generation}"`);
    return { generation: ctl.generation, config: ctl.doc, history: ctl.history.slice(-20) };
  });
  app.put('/v1/config', R('config', 'Replace the desired state; only the difference is applied', { ...mutating, body: configBody, response: { 200: applyResult, ...errors(400, 401, 409, 415, 422, 503) } }), async (req) =>
    ctl.putConfig(req.body, mutationOpts(req)));
  app.post('/v1/reload', R('config', 'Read the config file again and apply it (like SIGHUP)', { ...mutating, response: { 200: applyResult, ...errors(400, 401, 409, 422, 503) } }), async (req) =>
    ctl.reload(mutationOpts(req)));

  app.get('/metrics', R('metrics', 'Prometheus metrics (text format)', { produces: ['text/plain'], response: { 200: { type: 'string' } } }), async (_req, reply) => {
    void reply.type(o.metrics.contentType);
    return o.metrics.metrics();
  });

  registerStatic(app);
  return app;
}

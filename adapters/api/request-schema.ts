/** The `request` action's input and output: JSON Schema and type, declared once. */
import { type Static, Type } from '@sinclair/typebox';
import { Dictionary, Flag, StringEnum, TypeList } from '../shared/schemas.js';
import { MAX_TIMER_MS } from '../shared/timers.js';
import { DEFAULT_EXPECT_STATUS } from './expect-status.js';

export const METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS'] as const;
/** Output names that `extract` may not take: they are the response's own. */
const RESERVED_OUTPUTS = ['status', 'headers', 'body'];
export const DEFAULT_TIMEOUT_MS = 30_000;

export const RequestInput = Type.Object(
  {
    method: Type.Optional(StringEnum(METHODS, { description: 'HTTP method.', default: 'GET' })),
    url: Type.String({ description: 'Absolute http(s) URL.', minLength: 1 }),
    headers: Type.Optional(Dictionary(Type.String(), { description: 'Request headers.' })),
    query: Type.Optional(
      Dictionary(TypeList<string | number | boolean>(['string', 'number', 'boolean']), {
        description: 'Query parameters appended to the URL.',
      }),
    ),
    json: Type.Optional(
      Type.Unknown({ description: 'A JSON body, sent with content-type application/json. Not together with body.' }),
    ),
    body: Type.Optional(Type.String({ description: 'A text body, sent verbatim. Not together with json.' })),
    timeoutMs: Type.Optional(
      Type.Integer({
        description: 'Timeout of the whole request in milliseconds.',
        minimum: 1,
        maximum: MAX_TIMER_MS,
        default: DEFAULT_TIMEOUT_MS,
      }),
    ),
    expectStatus: Type.Optional(
      Type.Array(Type.Union([Type.Integer({ minimum: 100, maximum: 599 }), Type.String({ pattern: '^[1-5]xx$' })]), {
        description: "Statuses that count as success: codes (404) or classes ('2xx').",
        minItems: 1,
        default: [...DEFAULT_EXPECT_STATUS],
      }),
    ),
    followRedirects: Flag('Follow 3xx redirects; when false a 3xx is the answer.'),
    extract: Type.Optional(
      Dictionary(Type.String({ minLength: 1 }), {
        description:
          'Output name -> response path (.status, headers.Name, body, body.a[0], or a.b for body.a.b). A missing path gives null.',
        propertyNames: { not: { enum: RESERVED_OUTPUTS } },
      }),
    ),
  },
  {
    additionalProperties: false,
    not: { required: ['json', 'body'], properties: { json: true, body: true } },
  },
);
export type RequestInput = Static<typeof RequestInput>;

/** The response, plus one output per `extract` entry (null where its path found nothing). */
export const RequestOutput = Type.Intersect([
  Type.Object({
    status: Type.Integer({ minimum: 100, maximum: 599 }),
    headers: Dictionary(TypeList<string | string[]>(['string', 'array'], { items: { type: 'string' } })),
    body: Type.Unknown({ description: 'JSON when the content type says so and it parses, else the text' }),
  }),
  Type.Record(Type.String(), Type.Unknown(), { description: 'the values of `extract`' }),
]);
export type RequestOutput = Static<typeof RequestOutput>;

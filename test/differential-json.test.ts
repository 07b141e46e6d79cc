/**
 * Differential test of the payload reader (docs/architecture.md). Backend 'wasm' (and 'auto' for ES256)
 * reads a mandate's payload with the module's own JSON scanner and claim rules (assembly/json.ts,
 * assembly/mandate.ts); the others read it with isUtf8 + JSON.parse (src/jws/compact.ts) and
 * src/policy/claims.ts. Every token here is
 * validly signed, so the signature never decides: what varies is the payload TEXT, spelled by hand —
 * escapes, duplicate members, number forms, whitespace, syntax errors, invalid UTF-8, claim-rule and
 * policy failures — and every backend must give the same claims, or the same error code and
 * description. The generator is seeded, so a disagreement is replayed by running the file again.
 */
import { describe, expect, it, vi } from 'vitest'
import { CaracalAuth, CaracalAuthError, InMemoryRevocationStore, type CaracalAuthOptions } from '../src/index.js'
import type { BackendChoice } from '../src/backends/types.js'
import { MandateChannel } from '../src/backends/wasm-mandate.js'
import type { Claims } from '../src/policy/claims.js'
import { generateSigningKey, type SigningKey } from '../src/dev/sign-jws.js'
import { TEST_BACKENDS } from './support/backends.js'
import { b64u, headerSegment, signSegments } from './support/compact-tokens.js'
import { AUDIENCE, ISSUER, NOW_MS, NOW_SEC } from './support/mandates.js'
import { seededRandom } from './support/prng.js'

const CASES = 10_000
const SEED = 0x15_0e_5c_a1

const random = seededRandom(SEED)
const int = (n: number): number => Math.floor(random() * n)
const chance = (p: number): boolean => random() < p
const pick = <T>(list: readonly T[]): T => list[int(list.length)]!
const shuffle = <T>(list: readonly T[]): T[] => {
  const out = [...list]
  for (let i = out.length - 1; i > 0; i--) {
    const j = int(i + 1)
    ;[out[i], out[j]] = [out[j]!, out[i]!]
  }
  return out
}

// RS256 is cheap on every backend; ES256 on noble costs ~2 ms a verify, so it is a quarter of the cases.
const rsKey = generateSigningKey('RS256', 'rs-json')
const esKey = generateSigningKey('ES256', 'es-json')
const jwks = { keys: [rsKey.publicJwk, esKey.publicJwk] }

// ---------------------------------------------------------------------------------------------
// Configurations: every case picks one, the same for all backends. Non-ASCII option strings (and a
// lone surrogate) make the wasm side compare WTF-8 bytes where JS compares UTF-16 strings.

interface Config {
  readonly label: string
  readonly options: Partial<CaracalAuthOptions>
}

const AUD_UNICODE = 'resource://dócuments/ü'
const AUD_EMOJI = 'urn:caracal:😀\u2028'
const CONFIGS: readonly Config[] = [
  { label: 'defaults', options: { audience: AUDIENCE } },
  {
    label: 'zone+scopes+agent',
    options: {
      audience: [AUDIENCE, AUD_UNICODE, 'resource://other'],
      expectedZoneId: 'zone-1',
      requiredScopes: ['tool:call', 'dóc:read'],
      requireAgent: true,
      maxHopCount: 3,
      clockToleranceSec: 0,
    },
  },
  {
    label: 'delegation',
    options: {
      audience: [AUD_EMOJI, AUD_UNICODE],
      expectedZoneId: 'zöne-✓',
      requiredScopes: ['lone:\udc00'],
      requireDelegation: true,
      requireChainContains: ['app-1', 'äpp-2'],
      requiredTargets: ['https://api.example/ü', 'urn:target:1'],
      maxHopCount: 2,
      // A clock between two seconds and a fractional tolerance: the time rules compare f64s.
      clockToleranceSec: 2.5,
      now: () => NOW_MS + 700,
    },
  },
  {
    label: 'session',
    options: {
      audience: AUDIENCE,
      requiredUse: 'session',
      requiredScopes: ['documents:read'],
      clockToleranceSec: 300,
      maxHopCount: 10,
    },
  },
  {
    // maxHopCount 0 or less is the default (10); no clockToleranceSec: no leeway for exp, 60 s ahead.
    label: 'hops-default',
    options: {
      audience: AUDIENCE,
      requiredScopes: ['tool:call', 'admin'],
      maxHopCount: pick([0, -1, -7]),
      requireDelegation: true,
    },
  },
]

function makeAuth(config: Config, backend: BackendChoice): CaracalAuth {
  return new CaracalAuth({
    issuer: ISSUER,
    audience: AUDIENCE,
    revocations: new InMemoryRevocationStore({ now: () => NOW_MS }),
    backend,
    now: () => NOW_MS,
    cache: false,
    jwks: { keys: jwks },
    ...config.options,
  })
}

const audiencesOf = (c: Config): readonly string[] => [c.options.audience ?? AUDIENCE].flat()
/** The leeway for exp, and for nbf and iat ahead (README "Options", clockToleranceSec). */
const expLeewayOf = (c: Config): number => c.options.clockToleranceSec ?? 0
const futureLeewayOf = (c: Config): number => c.options.clockToleranceSec ?? 60
/** The hop limit in force: maxHopCount 0 or less means the default, 10. */
const maxHopsOf = (c: Config): number =>
  c.options.maxHopCount === undefined || c.options.maxHopCount <= 0 ? 10 : c.options.maxHopCount
const nowSecOf = (c: Config): number => (c.options.now?.() ?? NOW_MS) / 1000

// ---------------------------------------------------------------------------------------------
// A payload is built as a document whose parts can be raw text, then written with random spelling.

/** JSON text written as is: how syntax errors and odd spellings get into a payload. */
interface Raw {
  readonly raw: string
}
interface Obj {
  readonly members: Member[]
}
/** A member by name (a string, spelled by the writer, or a raw name), or a whole raw member. */
type Member = [name: string | Raw, value: Json] | Raw
type Json = null | boolean | number | string | readonly Json[] | Obj | Raw

const raw = (text: string): Raw => ({ raw: text })
const obj = (...members: Member[]): Obj => ({ members })
const isRaw = (v: unknown): v is Raw => typeof v === 'object' && v !== null && 'raw' in v
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && 'members' in v

/** Stands for invalid UTF-8 bytes (replaced at encoding); never produced by anything else. */
const BAD_BYTES = '\ue000'
/** Marks a place between two tokens, where whitespace (legal or not) may go. */
const SLOT = '\ue001'

const INVALID_UTF8: readonly number[][] = [
  [0xff],
  [0xfe],
  [0x80],
  [0xbf],
  [0xc0, 0x80],
  [0xc1, 0xbf],
  [0xe0, 0x80, 0x80],
  [0xed, 0xa0, 0x80],
  [0xed, 0xbf, 0xbf],
  [0xf0, 0x80, 0x80, 0x80],
  [0xf4, 0x90, 0x80, 0x80],
  [0xf5, 0x80, 0x80, 0x80],
  [0xc3],
  [0xe2, 0x82],
  [0xf0, 0x9f, 0x98],
  [0xc3, 0x28],
  [0xe2, 0x28, 0xa1],
  [0xf8, 0x88, 0x80, 0x80, 0x80],
]
/** Whitespace JSON does not allow (it allows exactly space, tab, LF and CR), and a NUL. */
const ILLEGAL_WS = ['\u00a0', '\f', '\v', '\u2028', '\u3000', '\ufeff', '\u0085', '\u0000', '\u001f']

/** Pieces of string values: every escape class, 1- to 4-byte UTF-8, and lone surrogates. */
const PIECES = [
  'a',
  'Z',
  '9',
  ' ',
  '-',
  '~',
  '\u007f',
  '"',
  '\\',
  '/',
  '\b',
  '\f',
  '\n',
  '\r',
  '\t',
  '\u0000',
  '\u001f',
  'é',
  'ß',
  '\u00a0',
  '\u0800',
  '\u2028',
  '\u2029',
  '€',
  '✓',
  '日本',
  '\ufeff',
  '\ufffd',
  '\uffff',
  '😀',
  '\u{10ffff}',
  '\u{10000}',
  '\ud800',
  '\udbff',
  '\udc00',
  '\udfff',
  '\ude00\ud83d',
  '\ud83d\ud83d\ude00',
]

/** What the current case used, for the coverage assertions at the end. */
let features = new Set<string>()
/** Per case: how often string characters are written as escapes, integers in another form. */
let escapeRate = 0
let spellRate = 0

function hex4(code: number): string {
  const h = code.toString(16).padStart(4, '0')
  return pick([h, h.toUpperCase(), [...h].map((c) => (chance(0.5) ? c.toUpperCase() : c)).join('')])
}

const isHigh = (c: number): boolean => c >= 0xd800 && c < 0xdc00
const isLow = (c: number): boolean => c >= 0xdc00 && c < 0xe000

/** A JSON string literal of `s`, each character raw or escaped at random (when JSON allows both). */
function lit(s: string, rate = escapeRate): string {
  let out = '"'
  for (let i = 0; i < s.length; i++) {
    const ch = s[i]!
    const c = s.charCodeAt(i)
    if (ch === BAD_BYTES) {
      out += ch
    } else if (isHigh(c) && i + 1 < s.length && isLow(s.charCodeAt(i + 1))) {
      // A pair: raw (4-byte UTF-8) or two escapes, which a reader must join.
      out += chance(rate) ? `\\u${hex4(c)}\\u${hex4(s.charCodeAt(i + 1))}` : ch + s[i + 1]
      i++
    } else if (isHigh(c) || isLow(c)) {
      out += `\\u${hex4(c)}` // a lone surrogate has no UTF-8 form: only the escape
    } else if (ch === '"' || ch === '\\') {
      out += chance(rate) ? `\\u${hex4(c)}` : `\\${ch}`
    } else if (c < 0x20) {
      const short = { '\b': '\\b', '\f': '\\f', '\n': '\\n', '\r': '\\r', '\t': '\\t' }[ch]
      out += short !== undefined && !chance(rate) ? short : `\\u${hex4(c)}`
    } else if (ch === '/') {
      out += chance(rate) ? pick(['\\/', `\\u${hex4(c)}`]) : '/'
    } else {
      out += chance(rate) ? `\\u${hex4(c)}` : ch
    }
  }
  return `${out}"`
}

/**
 * `v` spelled plainly or, at `rate`, as a 1.0-, 1e3- or 0.5e1-style form of the same value. The
 * wasm reader leaves those to the JS path, so they are kept rare: a deferred case agrees trivially.
 */
function integerText(v: number, rate = spellRate): string {
  const s = String(v)
  if (!chance(rate)) return s
  features.add('number-spelling')
  const zeros = s.length - s.replace(/0+$/, '').length
  const forms = [`${s}.0`, `${s}.000`, `${s}e0`, `${s}E+0`, `${s}e-0`, `${s}0e-1`, `${s}00E-2`, `0.${s}e${s.length}`]
  if (s.length > 1) forms.push(`${s[0]}.${s.slice(1)}e${s.length - 1}`, `${s[0]}.${s.slice(1)}E+${s.length - 1}`)
  if (zeros > 0 && zeros < s.length) forms.push(`${s.slice(0, -zeros)}e${zeros}`, `${s.slice(0, -zeros)}E+${zeros}`)
  return pick(forms)
}

function write(v: Json): string {
  if (v === null || typeof v === 'boolean') return String(v)
  if (typeof v === 'number') {
    if (Object.is(v, -0)) return chance(spellRate) ? pick(['-0.0', '-0e5', '-0E-0', '-1e-400']) : '-0'
    return Number.isSafeInteger(v) && v >= 0 ? integerText(v) : String(v)
  }
  if (typeof v === 'string') return lit(v)
  if (isRaw(v)) return v.raw
  if (isObj(v)) {
    const members = v.members.map((m) =>
      isRaw(m) ? m.raw : `${typeof m[0] === 'string' ? lit(m[0]) : m[0].raw}${SLOT}:${SLOT}${write(m[1])}`,
    )
    return `{${SLOT}${members.join(`${SLOT},${SLOT}`)}${SLOT}}`
  }
  return `[${SLOT}${v.map(write).join(`${SLOT},${SLOT}`)}${SLOT}]`
}

/** Fills the slots with legal whitespace (none, some, lots), and maybe one with `bad`. */
function fillSlots(text: string, bad: string | undefined): string {
  const parts = text.split(SLOT)
  const mode = int(3)
  const badAt = bad === undefined ? -1 : 1 + int(parts.length - 1)
  let out = parts[0]!
  for (let i = 1; i < parts.length; i++) {
    if (i === badAt) out += bad
    else if (mode === 1 && chance(0.2)) out += pick([' ', '\t', '\n', '\r', '\r\n', '  '])
    else if (mode === 2) out += Array.from({ length: int(4) }, () => pick([' ', '\t', '\n', '\r'])).join('')
    out += parts[i]
  }
  return out
}

/** UTF-8 of the text, with each BAD_BYTES replaced by an invalid sequence. */
function encode(text: string): Buffer {
  const parts = text.split(BAD_BYTES)
  const chunks: Buffer[] = [Buffer.from(parts[0]!, 'utf8')]
  for (let i = 1; i < parts.length; i++) chunks.push(Buffer.from(pick(INVALID_UTF8)), Buffer.from(parts[i]!, 'utf8'))
  return Buffer.concat(chunks)
}

// ---------------------------------------------------------------------------------------------
// The document: a valid mandate for the case's configuration, then random changes.

const REQUIRED_STRINGS = ['sub', 'client_id', 'sid', 'root_sid', 'jti']
const OPTIONAL_STRINGS = ['zone_id', 'agent_session_id', 'delegation_edge_id', 'source_session_id', 'target_session_id']
/** Optional claims where null means absent (for strings "" too); nbf is not among them. */
const NULLABLE = [
  ...OPTIONAL_STRINGS,
  'scope',
  'target',
  'delegation_path',
  'delegation_chain',
  'hop_count',
  'delegation_graph_epoch',
]
/** What separates scopes: runs of ASCII whitespace. */
const SCOPE_SPACE = [' ', '  ', '\t', '\n', '\r\n', '\v', '\f', ' \t\n ', '\r']
/** String claims no configuration compares, so a new value keeps the mandate valid. */
const FREE_STRINGS = ['sub', 'client_id', 'sid', 'root_sid', 'jti', 'source_session_id', 'target_session_id']
const INTEGERS = ['exp', 'iat', 'nbf', 'hop_count', 'delegation_graph_epoch']
const STRING_ARRAYS = ['target', 'delegation_path']
const SCOPE_POOL = [
  'tool:call',
  'dóc:read',
  'documents:read',
  'admin',
  'tool:call2',
  'x:😀',
  'lone:\udc00',
  'lone:\ud83d\udc00',
]
const APP_POOL = ['app-1', 'äpp-2', 'app-3', 'app-😀']
const TARGET_POOL = ['https://api.example/ü', 'urn:target:1', 'urn:target:2', 'https://api.example/u']

function torture(): string {
  return Array.from({ length: 1 + int(6) }, () => pick(PIECES)).join('')
}

function id(prefix: string): string {
  if (chance(0.15)) {
    features.add('torture-string')
    return torture()
  }
  return `${prefix}-${int(1000)}`
}

/** Names a JSON object may hold that are no claim, or a claim only elsewhere (application_id). */
function unknownName(): string {
  return pick([
    'x',
    'note',
    '',
    '__proto__',
    'constructor',
    'toString',
    'hasOwnProperty',
    'ISS',
    'iss ',
    'exp\u0000',
    'application_id',
    'session_id',
    'scopes',
    'iss\ud800',
    'ïss',
    '😀',
    'delegation_chain2',
    'sub_typ',
    torture(),
  ])
}

/** Any JSON value, nested up to `depth`. */
function deep(depth: number): Json {
  const leaf = (): Json =>
    pick<Json>([
      null,
      true,
      false,
      0,
      -0,
      1.5,
      1e300,
      '',
      'x',
      torture(),
      raw('1E+3'),
      raw('-1e-400'),
      ISSUER,
      { members: [] },
      [],
    ])
  if (depth <= 0 || chance(0.3)) return leaf()
  if (chance(0.5)) return Array.from({ length: int(4) }, () => deep(depth - 1))
  return obj(
    ...Array.from(
      { length: int(4) },
      (): Member => [pick([unknownName(), 'iss', 'exp', 'aud', 'application_id']), deep(depth - 1)],
    ),
  )
}

function scopeFor(required: readonly string[]): string {
  const tokens = shuffle([...required, ...Array.from({ length: int(3) }, () => pick(SCOPE_POOL))])
  if (chance(0.7)) return tokens.join(chance(0.8) ? ' ' : '  ')
  features.add('scope-whitespace')
  const gap = (): string => pick(SCOPE_SPACE)
  return (chance(0.3) ? gap() : '') + tokens.map((t) => t).join(gap()) + (chance(0.3) ? gap() : '')
}

/** A chain entry as the STS writes it; sometimes with ids "" or null, or the old names (ignored). */
function chainEntry(app: string): Obj {
  const entry = obj(['application_id', app])
  if (chance(0.4)) entry.members.push(['agent_session_id', chance(0.8) ? id('s') : pick<Json>(['', null])])
  if (chance(0.3)) entry.members.push(['delegation_edge_id', chance(0.8) ? id('d') : pick<Json>(['', null])])
  if (chance(0.1)) {
    features.add('old-hop-names')
    entry.members.push([pick(['session_id', 'delegation_id']), pick<Json>([id('x'), '', null, 5, obj()])])
  }
  return { members: shuffle(entry.members) }
}

/** A mandate that passes every rule and every option of `config`, members in random order. */
function mandate(config: Config): Obj {
  const o = config.options
  const m: Member[] = []
  const put = (name: string, value: Json): void => void m.push([name, value])
  const audiences = audiencesOf(config)
  put('iss', ISSUER)
  put(
    'aud',
    chance(0.7)
      ? pick(audiences)
      : shuffle([
          pick(audiences),
          ...Array.from({ length: 1 + int(2) }, () => pick(['resource://other', AUDIENCE, AUD_EMOJI, 'x'])),
        ]),
  )
  put('exp', NOW_SEC + 1 + int(3600))
  put('iat', NOW_SEC - int(600))
  if (chance(0.3)) put('nbf', NOW_SEC - int(600))
  for (const name of REQUIRED_STRINGS) put(name, id(name))
  put('use', o.requiredUse ?? 'resource')
  put('sub_type', pick(['user', 'application']))
  const required = o.requiredScopes ?? []
  if (required.length > 0 || chance(0.7)) put('scope', scopeFor(required))
  if (o.expectedZoneId !== undefined) put('zone_id', o.expectedZoneId)
  else if (chance(0.5)) put('zone_id', pick(['zone-1', 'zone-2', id('zone')]))
  if (o.requireAgent === true || chance(0.5)) put('agent_session_id', id('agent'))
  if (o.requireDelegation === true || chance(0.3)) put('delegation_edge_id', id('edge'))
  const apps = o.requireChainContains ?? []
  if (apps.length > 0 || chance(0.3))
    put('delegation_chain', shuffle([...apps, ...Array.from({ length: int(3) }, () => pick(APP_POOL))]).map(chainEntry))
  const targets = o.requiredTargets ?? []
  if (targets.length > 0 || chance(0.3))
    put('target', shuffle([...targets, ...Array.from({ length: int(3) }, () => pick(TARGET_POOL))]))
  if (chance(0.3))
    put(
      'delegation_path',
      Array.from({ length: int(4) }, () => id('hop')),
    )
  if (chance(0.5)) put('hop_count', int(maxHopsOf(config) + 1))
  if (chance(0.3)) put('delegation_graph_epoch', int(100_000))
  if (chance(0.2)) put('source_session_id', id('src'))
  if (chance(0.2)) put('target_session_id', id('dst'))
  return { members: shuffle(m) }
}

const named = (m: Member, name: string): boolean => !isRaw(m) && m[0] === name

function lastIndex(doc: Obj, name: string): number {
  for (let i = doc.members.length - 1; i >= 0; i--) if (named(doc.members[i]!, name)) return i
  return -1
}

function memberValue(doc: Obj, name: string): Json | undefined {
  const i = lastIndex(doc, name)
  return i < 0 ? undefined : (doc.members[i] as [string, Json])[1]
}

function insert(doc: Obj, member: Member, at = int(doc.members.length + 1)): void {
  doc.members.splice(at, 0, member)
}

/** Replaces the last (effective) value of `name`, or adds the member. */
function set(doc: Obj, name: string, value: Json): void {
  const i = lastIndex(doc, name)
  if (i < 0) insert(doc, [name, value])
  else doc.members[i] = [(doc.members[i] as [string | Raw, Json])[0], value]
}

function remove(doc: Obj, name: string): void {
  for (let i = doc.members.length - 1; i >= 0; i--) if (named(doc.members[i]!, name)) doc.members.splice(i, 1)
}

/** A random member with a name the writer spells, or undefined. */
function someMember(doc: Obj): [string, Json] | undefined {
  const candidates = doc.members.filter((m): m is [string, Json] => !isRaw(m) && typeof m[0] === 'string')
  return candidates.length === 0 ? undefined : pick(candidates)
}

/** What one case does after the document is written: text and byte changes. */
interface Finish {
  badSlot: string | undefined
  text: Array<(t: string) => string>
  bytes: Array<(b: Buffer) => Buffer>
}

type Change = (doc: Obj, config: Config, finish: Finish) => void

const NUMBER_FORMS = [
  '0',
  '-0',
  '-1',
  '-42',
  '012',
  '00',
  '1.5',
  '0.5',
  '-0.0',
  '1e-7',
  '1.0',
  '1e3',
  '1E+3',
  '0.5e1',
  '9007199254740991',
  '9007199254740992',
  '9007199254740993',
  '12345678901234567890',
  '1e400',
  '-1e-400',
  '1e16',
  '4.5e15',
  '18446744073709551616',
  '-9007199254740991',
  '9007199254740991.0',
  '9007199254740990.5',
  '1.00000000000000001',
  '2e9',
  '1e10',
  '-',
  '1.',
  '.5',
  '+1',
  '1e',
  '0x10',
  'Infinity',
  'NaN',
  '- 1',
  '1 2',
  '1e+',
  '01.5',
  '-01',
]
const NOT_NUMBERS: readonly Json[] = [
  String(NOW_SEC + 300),
  '',
  null,
  true,
  false,
  [],
  [NOW_SEC + 300],
  obj(),
  obj(['v', 1]),
]
const WRONG_STRINGS: readonly Json[] = ['', null, 0, 1, true, [], ['x'], obj(), raw('-0'), raw('1e3')]
const TIME_DELTAS = [-301, -300, -299, -61, -60, -59, -6, -5, -4, -1, 0, 1, 4, 5, 6, 59, 60, 61, 299, 300, 301]

const SYNTAX_VALUES = [
  '[1,2,]',
  '{"a":1,}',
  '{"a" 1}',
  "'single'",
  'NaN',
  'Infinity',
  '-Infinity',
  'undefined',
  '/* c */ 1',
  '1 // c\n',
  '{a:1}',
  '"a\tb"',
  '"a\nb"',
  '"a\u0000b"',
  '"a\u001fb"',
  '"\\x41"',
  '"\\u12G4"',
  '"\\u12"',
  '"\\u"',
  '"\\a"',
  '"\\\'"',
  '"\\U0041"',
  '"\\"',
  '"\\\u00e9"',
  '"unterminated',
  'tru',
  'nul',
  'True',
  'fals',
  '01',
  '1.',
  '.5',
  '+1',
  '0x1F',
  '1e',
  '- 1',
  '[1 2]',
  '{"a":1 "b":2}',
  '[[[[1]]]',
  '{"a":[}',
  '[',
  '{',
  ']',
  '}',
  '',
  ',',
  ':',
  '"a":1',
  '[,1]',
  '[1,,2]',
  '{,}',
  '{"a"}',
  '{"a":}',
  '"\u007f"',
  '""',
  '"\\u0000"',
  '"\\uD800\\u"',
  '{"":""}',
  '[-]',
  '-0',
  '[1e]',
  '{"a":1}}',
]
const SYNTAX_MEMBERS = [
  '"jti" "x"',
  '"jti"::"x"',
  'jti:"x"',
  '\'jti\':"x"',
  '"a":1,',
  ',',
  '/* comment */ "a":1',
  '"a":1 // c\n',
  '"a":',
  ':1',
  '"a" : 1 : 2',
  '"a":1 "b":2',
  '"\\u0069ss"',
  '"a\u0009":1',
  '"a"\u00a0:1',
]

const BENIGN: Record<string, Change> = {
  'escaped-name': (doc) => {
    const m = someMember(doc)
    if (m !== undefined) doc.members[doc.members.indexOf(m)] = [raw(lit(m[0], pick([0.5, 1]))), m[1]]
  },
  'dup-earlier': (doc) => {
    const m = someMember(doc)
    if (m === undefined) return
    const name = chance(0.5) ? m[0] : raw(lit(m[0], 1))
    insert(
      doc,
      [name, pick<Json>([...WRONG_STRINGS, ...NOT_NUMBERS, 'x', raw('1.5'), deep(3)])],
      int(doc.members.indexOf(m) + 1),
    )
  },
  'dup-later-same': (doc) => {
    const m = someMember(doc)
    if (m !== undefined) doc.members.push([chance(0.5) ? m[0] : raw(lit(m[0], 1)), m[1]])
  },
  'unknown-member': (doc) => insert(doc, [chance(0.8) ? unknownName() : raw(lit(unknownName(), 1)), deep(int(6))]),
  'deep-nesting': (doc) => {
    // Far deeper than any claim; the token cap (8 KiB) bounds it below the scanner's stack.
    const n = 50 + int(1200)
    const objects = Math.floor(n / 4)
    insert(doc, [
      unknownName(),
      raw(chance(0.5) ? '['.repeat(n) + ']'.repeat(n) : `${'{"a":'.repeat(objects)}0${'}'.repeat(objects)}`),
    ])
  },
  'torture-string': (doc) => {
    features.add('torture-string')
    if (chance(0.3)) insert(doc, [torture(), torture()])
    else set(doc, pick(FREE_STRINGS), torture())
  },
  'lone-surrogate': (doc) =>
    set(doc, pick(['jti', 'sub']), pick(['\ud800', '\udfff', 'a\udbffb', '\ude00\ud83d', '\ud83d'])),
  'negative-zero': (doc) => set(doc, pick(['nbf', 'iat', 'hop_count', 'delegation_graph_epoch']), -0),
  'number-forms': (doc) => {
    const name = pick(['exp', 'iat', 'nbf', 'hop_count', 'delegation_graph_epoch'])
    const v = memberValue(doc, name)
    if (typeof v === 'number' && !Object.is(v, -0)) set(doc, name, raw(integerText(v, 1)))
  },
  respelled: (doc) => {
    const name = pick(['iss', 'aud', 'zone_id', 'scope', 'use', 'sub_type', 'target', 'delegation_chain'])
    const v = memberValue(doc, name)
    if (typeof v === 'string') set(doc, name, raw(lit(v, pick([0.5, 1]))))
    else if (Array.isArray(v))
      set(
        doc,
        name,
        v.map((s: Json) => (typeof s === 'string' ? raw(lit(s, 1)) : s)),
      )
  },
  'aud-array': (doc, config) =>
    set(
      doc,
      'aud',
      shuffle([
        pick(audiencesOf(config)),
        ...Array.from({ length: int(3) }, () => pick(['x', AUD_EMOJI, AUD_UNICODE, 'resource://other'])),
      ]),
    ),
  'chain-dups': (doc) => {
    const chain = memberValue(doc, 'delegation_chain')
    if (!Array.isArray(chain) || chain.length === 0) return
    const entry = pick(chain)
    if (!isObj(entry)) return
    const name = pick(['application_id', 'agent_session_id', 'delegation_edge_id', 'session_id', 'delegation_id'])
    insert(entry, [chance(0.5) ? name : raw(lit(name, 1)), pick<Json>([...WRONG_STRINGS, 'app-1', deep(2)])], 0)
    if (chance(0.5)) insert(entry, [unknownName(), deep(3)])
  },
  'optional-empty': (doc) => {
    // "" or null for an optional string claim, null for the others: absent, as the plain verifier reads them.
    const name = pick(NULLABLE)
    set(
      doc,
      name,
      OPTIONAL_STRINGS.includes(name) || name === 'scope'
        ? pick<Json>(['', null, raw('null'), raw('""')])
        : pick<Json>([null, raw('null')]),
    )
  },
  'scope-spaced': (doc) => {
    const v = memberValue(doc, 'scope')
    if (typeof v !== 'string') return
    features.add('scope-whitespace')
    const tokens = v.split(/[ \t\n\v\f\r]+/).filter((t) => t !== '')
    set(doc, 'scope', pick(SCOPE_SPACE) + tokens.join(pick(SCOPE_SPACE)) + pick(['', ...SCOPE_SPACE]))
  },
  'legal-whitespace-around': (_doc, _config, finish) =>
    void finish.text.push((t) => pick([' ', '\t', '\n', '\r', ' \r\n\t']) + t + pick(['', ' ', '\n', '\t\r\n '])),
}

const CLAIM_FAILURES: Record<string, Change> = {
  'bad-iss': (doc) => {
    if (chance(0.1)) remove(doc, 'iss')
    else
      set(
        doc,
        'iss',
        pick<Json>([
          `${ISSUER}/`,
          'http://127.0.0.1:8081',
          '',
          ISSUER.toUpperCase(),
          `${ISSUER}\u0000`,
          ` ${ISSUER}`,
          null,
          1,
          [ISSUER],
          obj(['iss', ISSUER]),
        ]),
      )
  },
  'bad-aud': (doc) => {
    if (chance(0.15)) remove(doc, 'aud')
    else
      set(
        doc,
        'aud',
        pick<Json>([
          'resource://other',
          '',
          [],
          [1],
          [AUDIENCE, null],
          [AUDIENCE, 2],
          [AUD_UNICODE, [AUDIENCE]],
          ['x'],
          null,
          1,
          true,
          obj(),
          [AUDIENCE.toUpperCase()],
          'resource://dócuments/u',
        ]),
      )
  },
  'bad-integer': (doc) => set(doc, pick(INTEGERS), chance(0.7) ? raw(pick(NUMBER_FORMS)) : pick(NOT_NUMBERS)),
  'integer-missing': (doc) => remove(doc, pick(['exp', 'iat'])),
  'time-edge': (doc, config) => {
    // Integer times on either side of where exp (now - its leeway) and nbf, iat (now + theirs) start to fail.
    const name = pick(['exp', 'nbf', 'iat'])
    const leeway = name === 'exp' ? -expLeewayOf(config) : futureLeewayOf(config)
    const edge = Math.floor(nowSecOf(config) + pick([leeway, -leeway, 0]))
    set(doc, name, chance(0.7) ? edge + pick([-2, -1, 0, 1, 2]) : NOW_SEC + pick(TIME_DELTAS))
  },
  'bad-use': (doc) => {
    if (chance(0.15)) remove(doc, 'use')
    else
      set(
        doc,
        'use',
        pick<Json>(['session', 'resource', '', 'Resource', 'resource ', 'sessio', null, 1, ['resource'], obj()]),
      )
  },
  'bad-sub-type': (doc) => {
    if (chance(0.15)) remove(doc, 'sub_type')
    else set(doc, 'sub_type', pick<Json>(['', 'admin', 'User', 'application ', null, 0, ['user']]))
  },
  'bad-scope': (doc) => set(doc, 'scope', pick<Json>([1, ['tool:call'], obj(), true, raw('-0'), raw('""'), null])),
  'bad-string': (doc) => {
    if (chance(0.5)) {
      const name = pick(REQUIRED_STRINGS)
      if (chance(0.3)) remove(doc, name)
      else set(doc, name, pick(WRONG_STRINGS))
    } else {
      set(doc, pick(OPTIONAL_STRINGS), pick(WRONG_STRINGS))
    }
  },
  'bad-array': (doc) =>
    set(
      doc,
      pick(STRING_ARRAYS),
      pick<Json>([[''], ['a', ''], ['a', 1], 'a', '', null, obj(), [null], [['a']], [obj()], 1]),
    ),
  'bad-chain': (doc) => {
    const bad = pick<Json>([
      obj(),
      'app-1',
      '',
      null,
      1,
      [null],
      [1],
      ['app-1'],
      [[]],
      [obj()],
      [obj(['application_id', ''])],
      [obj(['application_id', 1])],
      [obj(['application_id', 'a'], ['agent_session_id', ''])],
      [obj(['application_id', 'a'], ['delegation_edge_id', ''])],
      [obj(['application_id', 'a'], ['agent_session_id', 1])],
      [obj(['application_id', 'a'], ['delegation_edge_id', null])],
      [obj(['application_id', 'a'], ['delegation_edge_id', false])],
      [obj(['application_id', 'a'], ['agent_session_id', ['s']])],
      [obj(['agent_session_id', 's'])],
      [obj(['session_id', 's'])],
      [obj(['application_id', 'a'], ['session_id', 1], ['delegation_id', obj()])],
      [obj(['application_id', 'app-1']), null],
      [obj(['application_id', 'app-1'], ['application_id', null])],
      [obj(['application_id', null], ['agent_session_id', ''])],
      [obj(['application_id', 'x'], ['agent_session_id', obj()], ['delegation_edge_id', ''])],
    ])
    const chain = memberValue(doc, 'delegation_chain')
    // Sometimes the bad entry follows valid ones: the reader must look past the first entry.
    set(doc, 'delegation_chain', Array.isArray(chain) && Array.isArray(bad) && chance(0.5) ? [...chain, ...bad] : bad)
  },
}

const POLICY_FAILURES: Record<string, Change> = {
  'policy-zone': (doc) =>
    chance(0.2)
      ? remove(doc, 'zone_id')
      : set(doc, 'zone_id', pick<Json>(['zone-2', 'zöne-✓ ', 'zone-1 ', 'Zone-1', 'zöne-✓', 'zone-1', '', null])),
  'policy-scope': (doc) =>
    set(
      doc,
      'scope',
      pick<Json>([
        '',
        null,
        'tool:calls dóc:read documents:read',
        'tool:cal',
        'xtool:call',
        'tool:call\tdóc:read',
        'tool:call\u00a0dóc:read',
        'doc:read tool:call',
        'lone:\ud83d\udc00',
        'tool:call dóc:read',
        'lone:\udc00 documents:read',
        'tool:call\u2028admin',
        'admin\u3000tool:call',
        'admin\u0085tool:call',
        'tool:call\u001fadmin',
        'tool:call\n\radmin',
        '\vadmin\ftool:call\t',
        'admin\u000btool:call',
      ]),
    ),
  'policy-agent': (doc) =>
    chance(0.5) ? remove(doc, 'agent_session_id') : set(doc, 'agent_session_id', pick<Json>(['', null])),
  'policy-delegation': (doc) =>
    chance(0.5) ? remove(doc, 'delegation_edge_id') : set(doc, 'delegation_edge_id', pick<Json>(['', null])),
  'policy-chain': (doc) => {
    if (chance(0.2)) return remove(doc, 'delegation_chain')
    set(
      doc,
      'delegation_chain',
      shuffle([
        pick(['app-1', 'äpp-2', 'App-1', 'app-1 ', 'a\u0308pp-2', 'app-3']),
        ...Array.from({ length: int(3) }, () => pick(APP_POOL)),
      ]).map(chainEntry),
    )
  },
  'policy-hops': (doc, config) => set(doc, 'hop_count', maxHopsOf(config) + pick([0, 1, 2, 100, 2 ** 40])),
  'policy-target': (doc) =>
    chance(0.2)
      ? remove(doc, 'target')
      : set(doc, 'target', shuffle(Array.from({ length: int(4) }, () => pick(TARGET_POOL)))),
}

const TOP_LEVEL: ReadonlyArray<(t: string) => string> = [
  (t) => `[${t}]`,
  () => '[]',
  () => '{}',
  () => '""',
  () => '"x"',
  () => '0',
  () => '-0',
  () => '1e3',
  () => 'null',
  () => 'true',
  () => '',
  () => ' ',
  () => '\n',
  (t) => t + t,
  (t) => `${t} x`,
  (t) => `${t},`,
  (t) => `${t}}`,
  (t) => `${t}]`,
  (t) => `${t}\u00a0`,
  (t) => `\ufeff${t}`,
  (t) => `${t}\u0000`,
  (t) => `${t}\f`,
  (t) => `\v${t}`,
  (t) => t.slice(0, -1),
  (t) => `${t}//`,
  (t) => `/**/${t}`,
  (t) => `(${t})`,
  (t) => JSON.stringify(t),
  (t) => `${t}${BAD_BYTES}`,
  (t) => `${BAD_BYTES}${t}`,
]

const SYNTAX: Record<string, Change> = {
  'syntax-value': (doc) => {
    const m = someMember(doc)
    if (m !== undefined && chance(0.7)) m[1] = raw(pick(SYNTAX_VALUES))
    else insert(doc, [unknownName(), raw(pick(SYNTAX_VALUES))])
  },
  'syntax-member': (doc) => insert(doc, raw(pick(SYNTAX_MEMBERS))),
  'raw-control-char': (doc) =>
    set(doc, pick(FREE_STRINGS), raw(`"a${pick(['\t', '\n', '\r', '\u0000', '\u001f', '\b', '\u0001'])}b"`)),
  'trailing-comma': (_doc, _config, finish) => void finish.text.push((t) => t.replace(/\}(\s*)$/, ',}$1')),
  'top-level': (_doc, _config, finish) => void finish.text.push(pick(TOP_LEVEL)),
  'illegal-whitespace': (_doc, _config, finish) => {
    finish.badSlot = pick(ILLEGAL_WS)
  },
  truncated: (_doc, _config, finish) => void finish.bytes.push((b) => b.subarray(0, int(b.length))),
  'byte-replaced': (_doc, _config, finish) =>
    void finish.bytes.push((b) => {
      const out = Buffer.from(b)
      if (out.length > 0)
        out[int(out.length)] = pick([
          0x22, 0x5c, 0x2c, 0x3a, 0x7b, 0x7d, 0x5b, 0x5d, 0x20, 0x00, 0x09, 0x7f, 0x80, 0xff, 0x30, 0x2d, 0x65, 0x2e,
          0x75,
        ])
      return out
    }),
}

const UTF8_FAILURES: Record<string, Change> = {
  'utf8-in-string': (doc) => {
    if (chance(0.2)) insert(doc, [`a${BAD_BYTES}b`, 1])
    else set(doc, pick([...FREE_STRINGS, 'iss', 'scope']), pick(['', 'x', 'é']) + BAD_BYTES + pick(['', 'y', '😀']))
  },
  'utf8-between-tokens': (_doc, _config, finish) => {
    finish.badSlot = BAD_BYTES
  },
  'utf8-tail': (_doc, _config, finish) =>
    void finish.bytes.push((b) => Buffer.concat([b, Buffer.from(pick(INVALID_UTF8))])),
}

/** Groups of changes and how often each is drawn: about a third of the cases stay valid. */
const GROUPS: ReadonlyArray<readonly [weight: number, changes: Record<string, Change>]> = [
  [45, BENIGN],
  [25, CLAIM_FAILURES],
  [14, POLICY_FAILURES],
  [10, SYNTAX],
  [6, UTF8_FAILURES],
]
const TOTAL_WEIGHT = GROUPS.reduce((n, [w]) => n + w, 0)

function drawChange(): [string, Change] {
  let r = int(TOTAL_WEIGHT)
  for (const [weight, changes] of GROUPS) {
    if (r < weight) return pick(Object.entries(changes))
    r -= weight
  }
  throw new Error('unreachable')
}

/** One case: the payload bytes for `config`, and what went into them. */
function payload(config: Config): Buffer {
  escapeRate = pick([0, 0, 0, 0.02, 0.2, 0.6, 1])
  spellRate = pick([0, 0, 0, 0, 0, 0, 0.05, 0.3])
  if (escapeRate > 0) features.add('escapes')
  const doc = mandate(config)
  const finish: Finish = { badSlot: undefined, text: [], bytes: [] }
  const count = chance(0.2) ? 0 : 1 + int(3)
  for (let k = 0; k < count; k++) {
    const [name, change] = drawChange()
    features.add(name)
    change(doc, config, finish)
  }
  let text = fillSlots(SLOT + write(doc) + SLOT, finish.badSlot)
  for (const f of finish.text) text = f(text)
  let bytes = encode(text)
  for (const f of finish.bytes) bytes = f(bytes)
  return bytes
}

// ---------------------------------------------------------------------------------------------

/** Claims as text that tells -0 from 0 (JSON.stringify alone writes both as 0). */
function claimsText(claims: Claims): string {
  return JSON.stringify(claims, (_key, v: unknown) => (Object.is(v, -0) ? { '-0': true } : v))
}

async function outcome(auth: CaracalAuth, token: string): Promise<string> {
  try {
    return `accepted ${claimsText(await auth.verify(token))}`
  } catch (error) {
    return error instanceof CaracalAuthError ? `${error.code}: ${error.description}` : `threw ${String(error)}`
  }
}

/** Bytes readable in a report: printable ASCII as is, the backslash and everything else as \xNN. */
function show(bytes: Uint8Array): string {
  return [...bytes]
    .map((b) =>
      b >= 0x20 && b < 0x7f && b !== 0x5c ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, '0')}`,
    )
    .join('')
}

function token(key: SigningKey, bytes: Uint8Array): string {
  return signSegments(key, headerSegment(key), b64u(bytes))
}

/**
 * Counts what the wasm one-call path answers (accepted, refused, defer, or threw an error), so the
 * test can show that the wasm reader decided most payloads itself instead of leaving them to the
 * JS path, which would make an agreement trivial.
 */
function countVerdicts(): { readonly counts: Map<string, number>; restore(): void } {
  const counts = new Map<string, number>()
  const original = MandateChannel.prototype.verify
  const spy = vi.spyOn(MandateChannel.prototype, 'verify').mockImplementation(function (this: MandateChannel, ...args) {
    let kind = 'threw'
    try {
      const verdict = original.apply(this, args)
      kind = verdict.kind
      return verdict
    } finally {
      counts.set(kind, (counts.get(kind) ?? 0) + 1)
    }
  })
  return { counts, restore: () => spy.mockRestore() }
}

/** The codes only a policy option gives (the target option words an invalid_token of its own). */
const POLICY_CODES = [
  'invalid_zone',
  'insufficient_scope',
  'agent_required',
  'delegation_required',
  'chain_mismatch',
  'hop_count_exceeded',
]

describe('differential JSON: every backend reads a payload the same way', () => {
  it(`on ${CASES} generated, validly signed payloads`, async () => {
    const auths = CONFIGS.map((c) => TEST_BACKENDS.map((b) => makeAuth(c, b)))
    const disagreements: string[] = []
    const labels = new Map<string, number>()
    const seen = new Map<string, { cases: number; accepted: number }>()
    const acceptedByConfig = new Map<string, number>()
    const verdicts = countVerdicts()
    try {
      for (let i = 0; i < CASES; i++) {
        features = new Set()
        const c = int(CONFIGS.length)
        const config = CONFIGS[c]!
        const key = chance(0.25) ? esKey : rsKey
        const bytes = payload(config)
        const t = token(key, bytes)
        const results = await Promise.all(auths[c]!.map((a) => outcome(a, t)))
        const accepted = results[0]!.startsWith('accepted')
        const label = accepted ? 'accepted' : results[0]!
        labels.set(label, (labels.get(label) ?? 0) + 1)
        if (accepted) acceptedByConfig.set(config.label, (acceptedByConfig.get(config.label) ?? 0) + 1)
        for (const f of features) {
          const s = seen.get(f) ?? { cases: 0, accepted: 0 }
          s.cases++
          if (accepted) s.accepted++
          seen.set(f, s)
        }
        if (results.some((r) => r !== results[0])) {
          const by = TEST_BACKENDS.map((b, k) => `    ${b}: ${results[k]}`).join('\n')
          disagreements.push(`case ${i} ${key.alg} config ${config.label} payload ${show(bytes)}\n${by}`)
        }
      }
    } finally {
      verdicts.restore()
    }
    for (const row of auths) for (const a of row) await a.close()

    expect(disagreements).toEqual([])
    // Not vacuous: many accepted (under every configuration), rejected for many different
    // reasons, every policy error among them, and every kind of change drawn many times.
    expect(labels.get('accepted') ?? 0).toBeGreaterThan(CASES / 5)
    for (const c of CONFIGS) expect(acceptedByConfig.get(c.label) ?? 0, c.label).toBeGreaterThan(CASES / 40)
    expect(labels.size).toBeGreaterThan(40)
    const codes = [...labels.keys()].map((l) => l.split(':')[0])
    for (const code of POLICY_CODES) expect(codes, code).toContain(code)
    for (const description of [
      'payload is not UTF-8',
      'payload is not JSON',
      'payload is not a JSON object',
      'mandate is not for target https://api.example/ü',
    ]) {
      expect(labels.get(`invalid_token: ${description}`) ?? 0, description).toBeGreaterThan(10)
    }
    const changes = [
      ...GROUPS.flatMap(([, g]) => Object.keys(g)),
      'escapes',
      'number-spelling',
      'torture-string',
      'scope-whitespace',
      'old-hop-names',
    ]
    for (const name of changes) expect(seen.get(name)?.cases ?? 0, name).toBeGreaterThan(20)
    // Valid spellings were accepted, not only drawn: the readers agreed on claims, not on errors.
    for (const name of [
      ...Object.keys(BENIGN),
      'escapes',
      'number-spelling',
      'torture-string',
      'scope-whitespace',
      'old-hop-names',
    ]) {
      expect(seen.get(name)?.accepted ?? 0, name).toBeGreaterThan(5)
    }
    if (TEST_BACKENDS.includes('wasm')) {
      // The wasm reader decided, in each direction; it deferred only numbers like 1.0 or 1e3.
      const { counts } = verdicts
      expect(counts.get('accepted') ?? 0).toBeGreaterThan(CASES / 5)
      expect(counts.get('threw') ?? 0).toBeGreaterThan(CASES / 5)
      expect(counts.get('refused') ?? 0).toBeGreaterThan(CASES / 50)
      expect(counts.get('defer') ?? 0).toBeGreaterThan(0)
      expect(counts.get('defer') ?? 0).toBeLessThan(CASES / 5)
    }
  }, 300_000)
})

// ---------------------------------------------------------------------------------------------
// Pinned cases: the outcome each backend must give, not only that they agree.

const BASE: ReadonlyArray<readonly [string, string]> = [
  ['iss', JSON.stringify(ISSUER)],
  ['aud', JSON.stringify(AUDIENCE)],
  ['exp', String(NOW_SEC + 300)],
  ['iat', String(NOW_SEC - 10)],
  ['jti', '"jti-1"'],
  ['sub', '"user-1"'],
  ['client_id', '"client-1"'],
  ['sid', '"sid-1"'],
  ['root_sid', '"root-1"'],
  ['use', '"resource"'],
  ['sub_type', '"user"'],
  ['scope', '"tool:call documents:read"'],
  ['zone_id', '"zone-1"'],
  ['agent_session_id', '"agent-1"'],
]

/** A valid mandate as JSON text: claims replaced by raw value texts (null: left out), with raw text before and after the members. */
function mandateText(values: Record<string, string | null> = {}, before = '', after = ''): string {
  const members = BASE.filter(([n]) => values[n] !== null).map(([n, v]) => `"${n}":${values[n] ?? v}`)
  for (const [n, v] of Object.entries(values))
    if (v !== null && !BASE.some(([b]) => b === n)) members.push(`"${n}":${v}`)
  return `{${before}${members.join(',')}${after}}`
}

/** UTF-8 of `text` with its BAD_BYTES replaced by `bytes`. */
function withBytes(text: string, bytes: readonly number[]): Buffer {
  return Buffer.concat(
    text
      .split(BAD_BYTES)
      .flatMap((part, i) => (i === 0 ? [Buffer.from(part)] : [Buffer.from(bytes), Buffer.from(part)])),
  )
}

interface Pinned {
  readonly name: string
  readonly payload: string | Uint8Array
  readonly config?: Config
  /** Checks the claims of an accepted token; absent when `rejected` is given. */
  readonly accepted?: (claims: Claims) => void
  readonly rejected?: readonly [code: string, description: string]
}

const notInteger = (claim: string): [string, string] => ['invalid_token', `${claim} must be a non-negative integer`]
const NOT_JSON: [string, string] = ['invalid_token', 'payload is not JSON']
const NOT_OBJECT: [string, string] = ['invalid_token', 'payload is not a JSON object']
const NOT_UTF8: [string, string] = ['invalid_token', 'payload is not UTF-8']
const [, SCOPES_CONFIG] = CONFIGS
const TOLERANCE_30: Config = { label: 'clockToleranceSec 30', options: { audience: AUDIENCE, clockToleranceSec: 30 } }
const TOLERANCE_0: Config = { label: 'clockToleranceSec 0', options: { audience: AUDIENCE, clockToleranceSec: 0 } }
const HOPS_0: Config = { label: 'maxHopCount 0', options: { audience: AUDIENCE, maxHopCount: 0 } }
const EXPIRED: [string, string] = ['invalid_token', 'token expired']
const NOT_YET: [string, string] = ['invalid_token', 'token not yet valid (nbf)']
const AHEAD: [string, string] = ['invalid_token', 'token issued in the future (iat)']
/** An accepted token whose claims lack `member` (an optional claim given as "" or null). */
const without =
  (member: string) =>
  (c: Claims): void =>
    expect(c).not.toHaveProperty(member)
const chainIs =
  (chain: unknown) =>
  (c: Claims): void =>
    expect(c.delegationChain).toEqual(chain)
/** The optional claims, the member each becomes, and whether "" is absent too (strings) or no value of the type. */
const OPTIONAL: ReadonlyArray<readonly [claim: string, member: string, emptyIsAbsent: boolean]> = [
  ['zone_id', 'zoneId', true],
  ['agent_session_id', 'sessionId', true],
  ['delegation_edge_id', 'delegationId', true],
  ['source_session_id', 'sourceSessionId', true],
  ['target_session_id', 'targetSessionId', true],
  ['target', 'targetResources', false],
  ['delegation_path', 'delegationPath', false],
  ['delegation_chain', 'delegationChain', false],
  ['hop_count', 'hopCount', false],
  ['delegation_graph_epoch', 'graphEpoch', false],
]
const EMPTY_REFUSED: Record<string, string> = {
  target: 'target must be an array of non-empty strings',
  delegation_path: 'delegation_path must be an array of non-empty strings',
  delegation_chain: 'delegation_chain must be an array',
  hop_count: 'hop_count must be a non-negative integer',
  delegation_graph_epoch: 'delegation_graph_epoch must be a non-negative integer',
}

const PINNED: readonly Pinned[] = [
  {
    name: 'a duplicate iss: the last wins',
    payload: mandateText({}, '"iss":"x",'),
    accepted: (c) => expect(c.sub).toBe('user-1'),
  },
  {
    name: 'a duplicate iss: the last is wrong',
    payload: mandateText({}, '', ',"iss":"x"'),
    rejected: ['invalid_token', 'issuer mismatch'],
  },
  {
    name: 'escaped member names ("\\u0069ss", "s\\u0075b")',
    payload: mandateText({ iss: null, sub: null }, `"\\u0069ss":${JSON.stringify(ISSUER)},"s\\u0075b":"user-\\u0031",`),
    accepted: (c) => expect(c.sub).toBe('user-1'),
  },
  { name: 'exp written 1e10', payload: mandateText({ exp: '1e10' }), accepted: (c) => expect(c.expiresAt).toBe(1e10) },
  {
    name: 'exp written 1E+3 (in the past)',
    payload: mandateText({ exp: '1E+3' }),
    rejected: ['invalid_token', 'token expired'],
  },
  { name: 'iat written 1.0', payload: mandateText({ iat: '1.0' }), accepted: (c) => expect(c.issuedAt).toBe(1) },
  {
    name: 'exp 2^53 - 1',
    payload: mandateText({ exp: '9007199254740991' }),
    accepted: (c) => expect(c.expiresAt).toBe(9007199254740991),
  },
  { name: 'exp 2^53', payload: mandateText({ exp: '9007199254740992' }), rejected: notInteger('exp') },
  { name: 'exp 2^53 + 1', payload: mandateText({ exp: '9007199254740993' }), rejected: notInteger('exp') },
  { name: 'exp of 20 digits', payload: mandateText({ exp: '12345678901234567890' }), rejected: notInteger('exp') },
  { name: 'exp as a string', payload: mandateText({ exp: `"${NOW_SEC + 300}"` }), rejected: notInteger('exp') },
  { name: 'nbf -0', payload: mandateText({ nbf: '-0' }), accepted: (c) => expect(c.sub).toBe('user-1') },
  {
    name: 'nbf -1e-400 (underflows to -0)',
    payload: mandateText({ nbf: '-1e-400' }),
    accepted: (c) => expect(c.sub).toBe('user-1'),
  },
  {
    name: 'hop_count -0 stays -0',
    payload: mandateText({ hop_count: '-0' }),
    accepted: (c) => expect(Object.is(c.hopCount, -0)).toBe(true),
  },
  { name: 'hop_count 1.5', payload: mandateText({ hop_count: '1.5' }), rejected: notInteger('hop_count') },
  {
    name: 'delegation_graph_epoch -1',
    payload: mandateText({ delegation_graph_epoch: '-1' }),
    rejected: notInteger('delegation_graph_epoch'),
  },
  { name: 'exp with a leading zero', payload: mandateText({ exp: `0${NOW_SEC + 300}` }), rejected: NOT_JSON },
  { name: 'a raw tab inside a string', payload: mandateText({ jti: '"jti\t1"' }), rejected: NOT_JSON },
  { name: 'a bad \\u escape', payload: mandateText({ jti: '"\\u12G4"' }), rejected: NOT_JSON },
  { name: 'a \\x escape', payload: mandateText({ jti: '"\\x41"' }), rejected: NOT_JSON },
  { name: 'a trailing comma', payload: mandateText({}, '', ','), rejected: NOT_JSON },
  { name: 'a BOM before the object', payload: `\ufeff${mandateText()}`, rejected: NOT_JSON },
  { name: 'U+00A0 after the object', payload: `${mandateText()}\u00a0`, rejected: NOT_JSON },
  { name: 'a form feed between members', payload: mandateText({}, '', ',\f"x":1'), rejected: NOT_JSON },
  {
    name: 'space, tab, LF and CR around and between',
    payload: ` \t\r\n${mandateText({}, ' \t\r\n', ' \n ,\r"x"\t:\n[ 1 ,\t{ } ]')}\r\n\t `,
    accepted: (c) => expect(c.jti).toBe('jti-1'),
  },
  { name: 'an empty payload', payload: '', rejected: NOT_JSON },
  { name: 'a top-level array', payload: '[]', rejected: NOT_OBJECT },
  { name: 'a top-level string', payload: '"x"', rejected: NOT_OBJECT },
  { name: 'a top-level null', payload: ' null ', rejected: NOT_OBJECT },
  { name: 'an empty object', payload: '{}', rejected: ['invalid_token', 'issuer mismatch'] },
  {
    name: 'a byte 0xff in a string',
    payload: withBytes(mandateText({ jti: `"a${BAD_BYTES}b"` }), [0xff]),
    rejected: NOT_UTF8,
  },
  {
    name: 'a byte 0xff between members',
    payload: withBytes(mandateText({}, `${BAD_BYTES}`), [0xff]),
    rejected: NOT_UTF8,
  },
  {
    name: 'an encoded surrogate (ed a0 80) in a string',
    payload: withBytes(mandateText({ jti: `"a${BAD_BYTES}b"` }), [0xed, 0xa0, 0x80]),
    rejected: NOT_UTF8,
  },
  {
    name: 'a truncated sequence at the end',
    payload: withBytes(`${mandateText()}${BAD_BYTES}`, [0xe2, 0x82]),
    rejected: NOT_UTF8,
  },
  {
    name: 'a lone escaped surrogate in jti',
    payload: mandateText({ jti: '"\\ud800"' }),
    accepted: (c) => expect(c.jti).toBe('\ud800'),
  },
  {
    name: 'an escaped surrogate pair in sub',
    payload: mandateText({ sub: '"\\uD83D\\ude00"' }),
    accepted: (c) => expect(c.sub).toBe('😀'),
  },
  {
    name: 'aud []',
    payload: mandateText({ aud: '[]' }),
    rejected: ['invalid_token', 'aud must be a string or an array of strings'],
  },
  {
    name: 'aud with a non-string',
    payload: mandateText({ aud: `[${JSON.stringify(AUDIENCE)},1]` }),
    rejected: ['invalid_token', 'aud must be a string or an array of strings'],
  },
  { name: 'aud missing', payload: mandateText({ aud: null }), rejected: ['invalid_token', 'aud missing'] },
  {
    name: 'use "session" where resource is required',
    payload: mandateText({ use: '"session"' }),
    rejected: ['invalid_token', 'mandate use is not "resource"'],
  },
  {
    name: 'a duplicate application_id in a chain entry: the last wins',
    payload: mandateText({ delegation_chain: '[{"application_id":1,"\\u0061pplication_id":"app-1"}]' }),
    accepted: (c) => expect(c.delegationChain).toEqual([{ applicationId: 'app-1' }]),
  },
  // Chain entries as the STS writes them: { application_id, agent_session_id, delegation_edge_id }.
  {
    name: 'a chain entry with agent_session_id and delegation_edge_id',
    payload: mandateText({
      delegation_chain:
        '[{"application_id":"a","agent_session_id":"s","delegation_edge_id":"d"},{"delegation_edge_id":"d2","application_id":"b"}]',
    }),
    accepted: chainIs([
      { applicationId: 'a', sessionId: 's', delegationId: 'd' },
      { applicationId: 'b', delegationId: 'd2' },
    ]),
  },
  {
    name: 'session_id and delegation_id in a chain entry are ignored',
    payload: mandateText({ delegation_chain: '[{"application_id":"a","session_id":"s","delegation_id":"d"}]' }),
    accepted: chainIs([{ applicationId: 'a' }]),
  },
  {
    name: 'session_id and delegation_id of any type are ignored',
    payload: mandateText({ delegation_chain: '[{"session_id":5,"application_id":"a","delegation_id":{}}]' }),
    accepted: chainIs([{ applicationId: 'a' }]),
  },
  {
    name: 'an empty session_id in a chain entry (ignored)',
    payload: mandateText({ delegation_chain: '[{"application_id":"a","session_id":""}]' }),
    accepted: chainIs([{ applicationId: 'a' }]),
  },
  {
    name: 'chain entry ids "" and null are absent',
    payload: mandateText({
      delegation_chain:
        '[{"application_id":"a","agent_session_id":"","delegation_edge_id":null},{"application_id":"b","agent_session_id":null,"delegation_edge_id":""}]',
    }),
    accepted: chainIs([{ applicationId: 'a' }, { applicationId: 'b' }]),
  },
  {
    name: 'an escaped agent_session_id name in a chain entry',
    payload: mandateText({ delegation_chain: '[{"application_id":"a","agent_s\\u0065ssion_id":"s"}]' }),
    accepted: chainIs([{ applicationId: 'a', sessionId: 's' }]),
  },
  {
    name: 'a chain entry agent_session_id 5',
    payload: mandateText({ delegation_chain: '[{"application_id":"a","agent_session_id":5}]' }),
    rejected: ['invalid_token', 'agent_session_id must be a string or null'],
  },
  {
    name: 'a chain entry delegation_edge_id []',
    payload: mandateText({
      delegation_chain: '[{"application_id":"a"},{"application_id":"b","delegation_edge_id":[]}]',
    }),
    rejected: ['invalid_token', 'delegation_edge_id must be a string or null'],
  },
  {
    name: 'a chain entry without application_id',
    payload: mandateText({ delegation_chain: '[{"agent_session_id":"s"}]' }),
    rejected: ['invalid_token', 'application_id missing'],
  },
  {
    name: 'a chain entry application_id null',
    payload: mandateText({ delegation_chain: '[{"application_id":null}]' }),
    rejected: ['invalid_token', 'application_id must be a non-empty string'],
  },
  // "" and null for every optional claim.
  ...OPTIONAL.flatMap(([claim, member, emptyIsAbsent]): Pinned[] => [
    { name: `${claim} null is absent`, payload: mandateText({ [claim]: 'null' }), accepted: without(member) },
    emptyIsAbsent
      ? { name: `${claim} "" is absent`, payload: mandateText({ [claim]: '""' }), accepted: without(member) }
      : {
          name: `${claim} "" is refused`,
          payload: mandateText({ [claim]: '""' }),
          rejected: ['invalid_token', EMPTY_REFUSED[claim]!],
        },
  ]),
  {
    name: 'scope null is no scope',
    payload: mandateText({ scope: 'null' }),
    accepted: (c) => expect(c.scope).toBe(''),
  },
  { name: 'scope "" is no scope', payload: mandateText({ scope: '""' }), accepted: (c) => expect(c.scope).toBe('') },
  { name: 'nbf null is refused (jose refuses it)', payload: mandateText({ nbf: 'null' }), rejected: notInteger('nbf') },
  { name: 'nbf "" is refused', payload: mandateText({ nbf: '""' }), rejected: notInteger('nbf') },
  {
    name: 'zone_id 1 is refused',
    payload: mandateText({ zone_id: '1' }),
    rejected: ['invalid_token', 'zone_id must be a string or null'],
  },
  {
    name: 'source_session_id {} is refused',
    payload: mandateText({ source_session_id: '{}' }),
    rejected: ['invalid_token', 'source_session_id must be a string or null'],
  },
  {
    name: 'sub "" stays refused (required)',
    payload: mandateText({ sub: '""' }),
    rejected: ['invalid_token', 'sub must be a non-empty string'],
  },
  {
    name: 'root_sid null stays refused (required)',
    payload: mandateText({ root_sid: 'null' }),
    rejected: ['invalid_token', 'root_sid must be a non-empty string'],
  },
  {
    name: 'zone_id "" with expectedZoneId',
    config: SCOPES_CONFIG,
    payload: mandateText({ zone_id: '""', scope: '"tool:call d\u00f3c:read"' }),
    rejected: ['invalid_zone', 'mandate was issued for another zone'],
  },
  {
    name: 'agent_session_id null with requireAgent',
    config: SCOPES_CONFIG,
    payload: mandateText({ agent_session_id: 'null', scope: '"tool:call d\u00f3c:read"' }),
    rejected: ['agent_required', 'mandate has no agent session'],
  },
  // exp, nbf and iat without clockToleranceSec (the default config): exp no leeway, 60 s for nbf and iat ahead.
  { name: 'exp = now (refused)', payload: mandateText({ exp: String(NOW_SEC) }), rejected: EXPIRED },
  {
    name: 'exp = now + 1 (accepted)',
    payload: mandateText({ exp: String(NOW_SEC + 1) }),
    accepted: (c) => expect(c.expiresAt).toBe(NOW_SEC + 1),
  },
  {
    name: 'exp = now - 30 (refused: no leeway)',
    payload: mandateText({ exp: String(NOW_SEC - 30) }),
    rejected: EXPIRED,
  },
  {
    name: 'iat = now + 59 (accepted)',
    payload: mandateText({ iat: String(NOW_SEC + 59) }),
    accepted: (c) => expect(c.issuedAt).toBe(NOW_SEC + 59),
  },
  { name: 'iat = now + 61 (refused)', payload: mandateText({ iat: String(NOW_SEC + 61) }), rejected: AHEAD },
  {
    name: 'nbf = now + 59 (accepted)',
    payload: mandateText({ nbf: String(NOW_SEC + 59) }),
    accepted: (c) => expect(c.sub).toBe('user-1'),
  },
  { name: 'nbf = now + 61 (refused)', payload: mandateText({ nbf: String(NOW_SEC + 61) }), rejected: NOT_YET },
  // With clockToleranceSec: it is the leeway of all three.
  {
    name: 'tolerance 30: exp = now - 29',
    config: TOLERANCE_30,
    payload: mandateText({ exp: String(NOW_SEC - 29) }),
    accepted: (c) => expect(c.expiresAt).toBe(NOW_SEC - 29),
  },
  {
    name: 'tolerance 30: exp = now - 30',
    config: TOLERANCE_30,
    payload: mandateText({ exp: String(NOW_SEC - 30) }),
    rejected: EXPIRED,
  },
  {
    name: 'tolerance 30: nbf = now + 30',
    config: TOLERANCE_30,
    payload: mandateText({ nbf: String(NOW_SEC + 30) }),
    accepted: (c) => expect(c.sub).toBe('user-1'),
  },
  {
    name: 'tolerance 30: nbf = now + 31',
    config: TOLERANCE_30,
    payload: mandateText({ nbf: String(NOW_SEC + 31) }),
    rejected: NOT_YET,
  },
  {
    name: 'tolerance 30: iat = now + 31',
    config: TOLERANCE_30,
    payload: mandateText({ iat: String(NOW_SEC + 31) }),
    rejected: AHEAD,
  },
  {
    name: 'tolerance 30: iat = now + 59 (no 60 s once set)',
    config: TOLERANCE_30,
    payload: mandateText({ iat: String(NOW_SEC + 59) }),
    rejected: AHEAD,
  },
  {
    name: 'tolerance 0: exp = now',
    config: TOLERANCE_0,
    payload: mandateText({ exp: String(NOW_SEC) }),
    rejected: EXPIRED,
  },
  {
    name: 'tolerance 0: exp = now + 1',
    config: TOLERANCE_0,
    payload: mandateText({ exp: String(NOW_SEC + 1) }),
    accepted: (c) => expect(c.expiresAt).toBe(NOW_SEC + 1),
  },
  {
    name: 'tolerance 0: nbf = now',
    config: TOLERANCE_0,
    payload: mandateText({ nbf: String(NOW_SEC) }),
    accepted: (c) => expect(c.sub).toBe('user-1'),
  },
  {
    name: 'tolerance 0: nbf = now + 1',
    config: TOLERANCE_0,
    payload: mandateText({ nbf: String(NOW_SEC + 1) }),
    rejected: NOT_YET,
  },
  {
    name: 'tolerance 0: iat = now + 1',
    config: TOLERANCE_0,
    payload: mandateText({ iat: String(NOW_SEC + 1) }),
    rejected: AHEAD,
  },
  // maxHopCount 0 is the default, 10.
  {
    name: 'maxHopCount 0: hop_count 10',
    config: HOPS_0,
    payload: mandateText({ hop_count: '10' }),
    accepted: (c) => expect(c.hopCount).toBe(10),
  },
  {
    name: 'maxHopCount 0: hop_count 11',
    config: HOPS_0,
    payload: mandateText({ hop_count: '11' }),
    rejected: ['hop_count_exceeded', 'hop count above 10'],
  },
  {
    name: 'an empty string in target',
    payload: mandateText({ target: '["a",""]' }),
    rejected: ['invalid_token', 'target must be an array of non-empty strings'],
  },
  {
    name: 'a non-ASCII required scope, escaped in the token',
    config: SCOPES_CONFIG,
    payload: mandateText({ scope: '"tool:call d\\u00f3c:read"' }),
    accepted: (c) => expect(c.scope).toBe('tool:call dóc:read'),
  },
  {
    name: 'a non-ASCII required scope missing',
    config: SCOPES_CONFIG,
    payload: mandateText({ scope: '"tool:call doc:read"' }),
    rejected: ['insufficient_scope', 'missing required scope: dóc:read'],
  },
  // Scopes are separated by any run of ASCII whitespace.
  ...[
    '"tool:call\\td\u00f3c:read"',
    '"\\ttool:call\\n\\nd\u00f3c:read\\r\\n"',
    '"tool:call    dóc:read"',
    '"dóc:read\\u000btool:call"',
    '"dóc:read\\ftool:call"',
    '" \\r tool:call\\t \\n dóc:read \\f"',
  ].map(
    (scope): Pinned => ({
      name: `scope ${scope}`,
      config: SCOPES_CONFIG,
      payload: mandateText({ scope }),
      accepted: (c) => expect(c.scope.split(/\s+/).filter(Boolean).sort()).toEqual(['dóc:read', 'tool:call']),
    }),
  ),
  ...[
    '"tool:call\\u00a0dóc:read"',
    '"tool:call\\u2028dóc:read"',
    '"tool:call\u3000dóc:read"',
    '"tool:call\\u0085dóc:read"',
    '"tool:call\\u001fdóc:read"',
  ].map(
    (scope): Pinned => ({
      name: `scope ${scope} is one scope`,
      config: SCOPES_CONFIG,
      payload: mandateText({ scope }),
      rejected: ['insufficient_scope', 'missing required scope: tool:call dóc:read'],
    }),
  ),
  {
    name: 'scope null with required scopes',
    config: SCOPES_CONFIG,
    payload: mandateText({ scope: 'null' }),
    rejected: ['insufficient_scope', 'missing required scope: tool:call dóc:read'],
  },
  {
    name: 'scope tab-separated, one missing',
    config: SCOPES_CONFIG,
    payload: mandateText({ scope: '"dóc:read\\tdocuments:read"' }),
    rejected: ['insufficient_scope', 'missing required scope: tool:call'],
  },
]

describe('differential JSON: pinned outcomes', () => {
  it('each backend gives the expected claims or error', async () => {
    for (const backend of TEST_BACKENDS) {
      const configs = new Set([...CONFIGS, ...PINNED.flatMap((p) => (p.config === undefined ? [] : [p.config]))])
      const auths = new Map([...configs].map((c) => [c, makeAuth(c, backend)]))
      for (const p of PINNED) {
        const auth = auths.get(p.config ?? CONFIGS[0]!)!
        const bytes = typeof p.payload === 'string' ? Buffer.from(p.payload, 'utf8') : p.payload
        for (const key of [rsKey, esKey]) {
          const verdict = auth.verify(token(key, bytes))
          const where = `${p.name} (${backend}, ${key.alg})`
          if (p.rejected !== undefined) {
            await expect(verdict, where).rejects.toMatchObject({ code: p.rejected[0], description: p.rejected[1] })
          } else {
            const claims = await verdict.catch((error: unknown) => {
              throw new Error(`${where}: rejected with ${String(error)}`)
            })
            p.accepted!(claims)
          }
        }
      }
      for (const a of auths.values()) await a.close()
    }
  })
})

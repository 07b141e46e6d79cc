/**
 * The scripted tour of `npm start`: a real MCP SDK client talks to the protected server over HTTP
 * and each step is a row — what was expected, what the server answered. Exported so a test runs the
 * same tour in-process.
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'

export interface TourRow {
  readonly step: string
  readonly expected: string
  readonly actual: string
  readonly outcome: 'pass' | 'fail' | 'skip'
}

export interface TourContext {
  readonly mcpUrl: URL
  /** Mints a mandate with the given claim overrides (`undefined` removes a claim); absent when the STS cannot mint. */
  readonly mint?: ((overrides: Record<string, unknown>) => Promise<string> | string) | undefined
  /** Revokes an anchor in the server's revocation store. */
  readonly revoke: (anchor: string) => Promise<void> | void
}

/** What the server answered to the last request that failed, as the client's fetch saw it. */
export interface ObservedResponse {
  readonly status: number
  readonly wwwAuthenticate: string | null
  readonly retryAfter: string | null
  readonly body: unknown
}

/** A fetch for the SDK transport that keeps the status, challenge and body of every error answer. */
export function recordingFetch(): { fetch: typeof fetch; lastError: () => ObservedResponse | undefined } {
  let last: ObservedResponse | undefined
  const recording: typeof fetch = async (input, init) => {
    const response = await fetch(input, init)
    if (response.status >= 400) {
      const text = await response.clone().text()
      let body: unknown = text
      try {
        body = JSON.parse(text)
      } catch {
        // not JSON: keep the text
      }
      last = {
        status: response.status,
        wwwAuthenticate: response.headers.get('www-authenticate'),
        retryAfter: response.headers.get('retry-after'),
        body,
      }
    }
    return response
  }
  return { fetch: recording, lastError: () => last }
}

export interface ConnectedClient {
  readonly client: Client
  readonly lastError: () => ObservedResponse | undefined
  close(): Promise<void>
}

/**
 * An MCP SDK client on the Streamable HTTP transport, sending `Authorization: Bearer <token>` when
 * given a token (or the given header as is, to show what other schemes get).
 */
export async function connectClient(
  mcpUrl: URL,
  token: string | { readonly authorization: string } | undefined,
): Promise<ConnectedClient> {
  const recorder = recordingFetch()
  const authorization =
    token === undefined ? undefined : typeof token === 'string' ? `Bearer ${token}` : token.authorization
  const transport = new StreamableHTTPClientTransport(mcpUrl, {
    fetch: recorder.fetch,
    ...(authorization === undefined ? {} : { requestInit: { headers: { authorization } } }),
  })
  const client = new Client({ name: 'caracal-demo-tour', version: '1.0.0' })
  try {
    await client.connect(transport)
  } catch (error) {
    await client.close().catch(() => {})
    throw Object.assign(new Error('connect failed', { cause: error }), { observed: recorder.lastError() })
  }
  return { client, lastError: recorder.lastError, close: () => client.close() }
}

/** `401 invalid_token`-style summary of an error answer: status and the Caracal code of its body. */
export function summarize(observed: ObservedResponse | undefined): string {
  if (observed === undefined) return 'no HTTP error'
  const data = (observed.body as { error?: { data?: { error?: unknown } } } | undefined)?.error?.data
  return typeof data?.error === 'string' ? `${observed.status} ${data.error}` : `${observed.status}`
}

function observedOf(error: unknown, client?: ConnectedClient): ObservedResponse | undefined {
  return (error as { observed?: ObservedResponse } | undefined)?.observed ?? client?.lastError()
}

function textOf(result: unknown): string {
  const content = (result as { content?: { type: string; text?: string }[] }).content ?? []
  return content.map((c) => c.text ?? '').join('')
}

/** Editing the payload of a signed mandate (here: granting itself a scope) and keeping the signature. */
export function tamper(token: string): string {
  const [header, payload, signature] = token.split('.')
  const claims = JSON.parse(Buffer.from(payload ?? '', 'base64url').toString('utf8')) as Record<string, unknown>
  claims.scope = `${String(claims.scope ?? '')} admin`.trim()
  return `${header}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${signature}`
}

export async function runTour(ctx: TourContext): Promise<TourRow[]> {
  const rows: TourRow[] = []
  const row = (step: string, expected: string, actual: string): void => {
    rows.push({ step, expected, actual, outcome: actual === expected ? 'pass' : 'fail' })
  }
  const skip = (step: string, expected: string): void => {
    rows.push({ step, expected, actual: 'skipped: this STS cannot mint', outcome: 'skip' })
  }
  /** Connect with `token` and call `search`; the summary of the answer. */
  const attempt = async (token: string | undefined): Promise<string> => {
    let connected: ConnectedClient | undefined
    try {
      connected = await connectClient(ctx.mcpUrl, token)
      await connected.client.callTool({ name: 'search', arguments: { query: 'mandate' } })
      return 'allowed'
    } catch (error) {
      return summarize(observedOf(error, connected))
    } finally {
      await connected?.close().catch(() => {})
    }
  }
  const mint = ctx.mint

  // 1–2: a valid mandate, kept open for the revocation step at the end.
  const sid = `demo-sid-${Date.now().toString(36)}`
  let valid: ConnectedClient | undefined
  if (mint === undefined) {
    skip('valid mandate: search', 'allowed')
    skip('valid mandate: get_document', 'allowed')
  } else {
    try {
      valid = await connectClient(ctx.mcpUrl, await mint({ sid }))
      const found = JSON.parse(
        textOf(await valid.client.callTool({ name: 'search', arguments: { query: 'revocation session' } })),
      ) as {
        caller: { sub: string }
        results: { id: string }[]
      }
      row(
        'valid mandate: search',
        'allowed',
        found.results.length > 0 && found.caller.sub !== '' ? 'allowed' : 'allowed, but no results',
      )
      const got = JSON.parse(
        textOf(
          await valid.client.callTool({ name: 'get_document', arguments: { id: found.results[0]?.id ?? 'doc-1' } }),
        ),
      ) as {
        document: { title: string }
      }
      row('valid mandate: get_document', 'allowed', got.document.title === '' ? 'empty document' : 'allowed')
    } catch (error) {
      const actual = summarize(observedOf(error, valid))
      while (rows.length < 2)
        row(rows.length === 0 ? 'valid mandate: search' : 'valid mandate: get_document', 'allowed', actual)
    }
  }

  row('no token', '401 missing_token', await attempt(undefined))

  if (mint === undefined) {
    for (const [step, expected] of [
      ['tampered mandate (payload edited)', '401 invalid_token'],
      ['mandate without tool:call', '403 insufficient_scope'],
      ['mandate without an agent session', '403 agent_required'],
      ['mandate without documents:read', 'tools hidden'],
      ['same mandate after its session is revoked', '401 session_revoked'],
    ] as const) {
      skip(step, expected)
    }
    return rows
  }

  row('tampered mandate (payload edited)', '401 invalid_token', await attempt(tamper(await mint({}))))
  row('mandate without tool:call', '403 insufficient_scope', await attempt(await mint({ scope: 'documents:read' })))
  row(
    'mandate without an agent session',
    '403 agent_required',
    await attempt(await mint({ agent_session_id: undefined })),
  )

  // Per-tool scopes (fastmcp canAccess): the mandate passes, the tools needing documents:read are not there.
  let narrow: ConnectedClient | undefined
  try {
    narrow = await connectClient(ctx.mcpUrl, await mint({ scope: 'tool:call' }))
    const listed = (await narrow.client.listTools()).tools.map((t) => t.name)
    row(
      'mandate without documents:read',
      'tools hidden',
      listed.length === 0 ? 'tools hidden' : `listed: ${listed.join(', ')}`,
    )
  } catch (error) {
    row('mandate without documents:read', 'tools hidden', summarize(observedOf(error, narrow)))
  } finally {
    await narrow?.close().catch(() => {})
  }

  // The client connected in step 1 keeps its mandate; revoking the session stops its next call.
  if (valid === undefined) {
    row('same mandate after its session is revoked', '401 session_revoked', 'no connected client')
  } else {
    await ctx.revoke(sid)
    let actual: string
    try {
      await valid.client.callTool({ name: 'search', arguments: { query: 'mandate' } })
      actual = 'allowed'
    } catch (error) {
      actual = summarize(observedOf(error, valid))
    }
    row('same mandate after its session is revoked', '401 session_revoked', actual)
    await valid.close().catch(() => {})
  }
  return rows
}

/** The rows as a fixed-width table with a ✓/✗ column. */
export function formatTour(rows: readonly TourRow[]): string {
  const mark = { pass: '✓', fail: '✗', skip: '–' } as const
  const head = ['', 'step', 'expected', 'got']
  const body = rows.map((r) => [mark[r.outcome], r.step, r.expected, r.actual])
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)))
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => c.padEnd(widths[i]!))
      .join('  ')
      .trimEnd()
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n')
}

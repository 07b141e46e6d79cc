/**
 * The `documents` MCP server of the original guide: `search` and `get_document` over a small
 * in-memory set, on fastmcp, every request verified by CaracalAuth. Tools read the caller from
 * `context.session` (a `CaracalSession`).
 */
import type { IncomingMessage } from 'node:http'
import { FastMCP, UserError, type Logger } from 'fastmcp'
import { z } from 'zod'
import { hasScopes, type CaracalSession } from '../adapters/fastmcp.js'

export interface StoredDocument {
  readonly id: string
  readonly title: string
  readonly tags: readonly string[]
  readonly body: string
}

export const DOCUMENTS: readonly StoredDocument[] = Object.freeze([
  {
    id: 'doc-1',
    title: 'Mandates in five minutes',
    tags: ['mandate', 'jwt'],
    body: 'A Caracal mandate is a short-lived JWT signed by the STS. It names the caller (sub), the client, the authority records it derives from (sid, root_sid) and, for agents, the agent session.',
  },
  {
    id: 'doc-2',
    title: 'Revoking a session',
    tags: ['revocation', 'session'],
    body: 'Revoking sid, root_sid, an agent session or a delegation edge stops every mandate that carries it, on every instance, within milliseconds: the revocation list is checked in memory on each request.',
  },
  {
    id: 'doc-3',
    title: 'Scopes and tools',
    tags: ['scope', 'tools'],
    body: 'The server requires tool:call for every request; each tool may ask for more (documents:read here) and is hidden from callers whose mandate lacks it.',
  },
  {
    id: 'doc-4',
    title: 'Delegation chains',
    tags: ['delegation', 'agents'],
    body: 'When an agent calls on behalf of another application, the mandate carries the delegation edge and the chain of applications, and its hop count bounds how deep the chain may go.',
  },
])

export function searchDocuments(query: string, limit = 5): StoredDocument[] {
  const words = query
    .toLowerCase()
    .split(/\s+/)
    .filter((w) => w !== '')
  const score = (d: StoredDocument): number => {
    const text = `${d.title} ${d.tags.join(' ')} ${d.body}`.toLowerCase()
    return words.reduce((n, w) => n + (text.includes(w) ? 1 : 0), 0)
  }
  return DOCUMENTS.map((d) => ({ d, s: score(d) }))
    .filter((x) => x.s > 0)
    .sort((a, b) => b.s - a.s)
    .slice(0, limit)
    .map((x) => x.d)
}

/** The caller as the tools report it: what a tool typically reads from the mandate. */
export function callerOf(session: CaracalSession | undefined): Record<string, unknown> {
  if (session === undefined) throw new UserError('not authenticated')
  const c = session.claims
  return { sub: c.sub, clientId: c.clientId, zoneId: c.zoneId, agentSessionId: c.sessionId, scopes: session.scopes }
}

export interface DocumentsServerOptions {
  readonly authenticate: (req: IncomingMessage | undefined) => Promise<CaracalSession>
  /** Called when a tool body runs (tests count these to prove rejected requests run no tool). */
  readonly onToolRun?: (tool: string, session: CaracalSession | undefined) => void
  readonly logger?: Logger
}

/** fastmcp logs every HTTP stream session at info level; the demo keeps its output to the table. */
export const quietLogger: Logger = {
  debug: () => {},
  info: () => {},
  log: () => {},
  warn: (...args: unknown[]) => console.warn(...args),
  error: (...args: unknown[]) => console.error(...args),
}

export function createDocumentsServer(options: DocumentsServerOptions): FastMCP<CaracalSession> {
  const server = new FastMCP<CaracalSession>({
    name: 'documents',
    version: '1.0.0',
    authenticate: options.authenticate,
    logger: options.logger ?? quietLogger,
  })
  const ran = options.onToolRun ?? (() => {})

  server.addTool({
    name: 'search',
    description: 'Search the documents by keywords; returns ids and titles.',
    parameters: z.object({ query: z.string().min(1), limit: z.number().int().min(1).max(10).optional() }),
    canAccess: hasScopes('documents:read'),
    execute: async ({ query, limit }, { session }) => {
      ran('search', session)
      const results = searchDocuments(query, limit).map((d) => ({ id: d.id, title: d.title }))
      return JSON.stringify({ caller: callerOf(session), results })
    },
  })

  server.addTool({
    name: 'get_document',
    description: 'Fetch one document by id.',
    parameters: z.object({ id: z.string().min(1) }),
    canAccess: hasScopes('documents:read'),
    execute: async ({ id }, { session }) => {
      ran('get_document', session)
      const doc = DOCUMENTS.find((d) => d.id === id)
      if (doc === undefined) throw new UserError(`no document ${id}`)
      return JSON.stringify({ caller: callerOf(session), document: doc })
    },
  })
  return server
}

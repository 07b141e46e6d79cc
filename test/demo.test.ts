/** The `npm start` demo: its tour in-process, its external-STS modes, and main.ts as a process. */
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { startDemo } from '../src/demo/app.js'
import { formatTour, runTour, type TourRow } from '../src/demo/tour.js'
import { startDevSts } from '../src/dev/index.js'

const EXPECTED: [string, string][] = [
  ['valid mandate: search', 'allowed'],
  ['valid mandate: get_document', 'allowed'],
  ['no token', '401 missing_token'],
  ['tampered mandate (payload edited)', '401 invalid_token'],
  ['mandate without tool:call', '403 insufficient_scope'],
  ['mandate without an agent session', '403 agent_required'],
  ['mandate without documents:read', 'tools hidden'],
  ['same mandate after its session is revoked', '401 session_revoked'],
]

function summary(rows: readonly TourRow[]): [string, string, string][] {
  return rows.map((r) => [r.step, r.actual, r.outcome])
}

describe('demo tour', () => {
  it('every row as expected, and tools ran only for the allowed calls', async () => {
    const runs: string[] = []
    const demo = await startDemo({ onToolRun: (tool) => runs.push(tool) })
    try {
      const rows = await runTour({
        mcpUrl: demo.mcpUrl,
        mint: demo.mint,
        revoke: (a) => demo.revocations.markRevoked(a),
      })
      expect(summary(rows)).toEqual(EXPECTED.map(([step, expected]) => [step, expected, 'pass']))
      expect(runs).toEqual(['search', 'get_document'])
      const table = formatTour(rows)
      for (const [step] of EXPECTED) expect(table).toContain(step)
      expect(table).not.toContain('✗')
    } finally {
      await demo.close()
    }
  })

  it('with an external STS that can mint (CARACAL_STS_URL), the same tour passes', async () => {
    const external = await startDevSts({ zoneId: 'zone-ext' })
    const demo = await startDemo({ stsUrl: external.url, zoneId: 'zone-ext' })
    try {
      expect(demo.sts).toBeUndefined()
      const rows = await runTour({
        mcpUrl: demo.mcpUrl,
        mint: demo.mint,
        revoke: (a) => demo.revocations.markRevoked(a),
      })
      expect(rows.map((r) => r.outcome)).toEqual(EXPECTED.map(() => 'pass'))
    } finally {
      await demo.close()
      await external.close()
    }
  })

  it('with an external STS that cannot mint, the token rows are skipped and the rest still runs', async () => {
    const external = await startDevSts()
    // A JWKS-only view of the STS: same issuer, no /mint; keys only for the demo's zone, as a Caracal STS serves them.
    const { createServer } = await import('node:http')
    const jwksOnly = createServer((req, res) => {
      if (req.url === '/.well-known/jwks.json?zone_id=demo-zone')
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(external.jwks()))
      else res.writeHead(404).end()
    })
    await new Promise<void>((resolve) => jwksOnly.listen(0, '127.0.0.1', resolve))
    const port = (jwksOnly.address() as { port: number }).port
    const demo = await startDemo({ stsUrl: `http://127.0.0.1:${port}` })
    try {
      expect(demo.mint).toBeUndefined()
      const rows = await runTour({
        mcpUrl: demo.mcpUrl,
        mint: demo.mint,
        revoke: (a) => demo.revocations.markRevoked(a),
      })
      expect(rows.find((r) => r.step === 'no token')).toMatchObject({ outcome: 'pass', actual: '401 missing_token' })
      expect(rows.filter((r) => r.outcome === 'skip')).toHaveLength(EXPECTED.length - 1)
    } finally {
      await demo.close()
      await new Promise<void>((resolve) => jwksOnly.close(() => resolve()))
      await external.close()
    }
  })
})

describe('npm start entry (src/demo/main.ts)', () => {
  it('prints the table, the URL, a fresh mandate and a curl line, and keeps serving until SIGTERM', async () => {
    const main = fileURLToPath(new URL('../src/demo/main.ts', import.meta.url))
    const child = spawn(process.execPath, ['--import', 'tsx', main], {
      env: { ...process.env, CARACAL_ZONE_ID: 'zone-main', CARACAL_STS_URL: '', REDIS_URL: '', PORT: '0' },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let out = ''
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString()
    })
    child.stderr.on('data', (chunk: Buffer) => {
      out += chunk.toString()
    })
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no curl line in time:\n${out}`)), 25_000)
        child.stdout.on('data', () => {
          if (out.includes('curl -s http')) {
            clearTimeout(timer)
            resolve()
          }
        })
        void exited.then((code) => reject(new Error(`exited early (${code}):\n${out}`)))
      })
      for (const [step, expected] of EXPECTED)
        expect(out).toMatch(new RegExp(`✓\\s+${step.replace(/[()]/g, '\\$&')}\\s+${expected}\\s+${expected}`))
      expect(out).toContain('zone zone-main')
      const url = /Serving (http:\/\/127\.0\.0\.1:\d+\/mcp)/.exec(out)?.[1]
      const token = /^(eyJ[\w-]+\.[\w-]+\.[\w-]+)$/m.exec(out)?.[1]
      expect(url).toBeDefined()
      expect(token).toBeDefined()
      // Still serving: the printed mandate works with the printed URL.
      const response = await fetch(url!, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
          authorization: `Bearer ${token}`,
        },
        body: JSON.stringify({
          jsonrpc: '2.0',
          id: 1,
          method: 'tools/call',
          params: { name: 'get_document', arguments: { id: 'doc-2' } },
        }),
      })
      expect(response.status).toBe(200)
      expect(await response.text()).toContain('Revoking a session')
    } finally {
      child.kill('SIGTERM')
      expect(await exited).toBe(0)
    }
  })
})

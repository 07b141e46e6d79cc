/**
 * `npm start`: the development STS and the protected `documents` MCP server, a scripted tour by a
 * real MCP client, then the server keeps serving until Ctrl-C.
 * Environment: CARACAL_STS_URL (an external STS), CARACAL_ZONE_ID, REDIS_URL, PORT.
 */
import { startDemo, DEFAULT_ZONE_ID } from './app.js'
import { formatTour, runTour } from './tour.js'

function env(name: string): string | undefined {
  const value = process.env[name]
  return value === undefined || value.trim() === '' ? undefined : value.trim()
}

async function main(): Promise<void> {
  const port = env('PORT') === undefined ? 0 : Number(env('PORT'))
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new Error(`PORT must be a port number, not ${env('PORT')}`)
  const demo = await startDemo({
    port,
    stsUrl: env('CARACAL_STS_URL'),
    zoneId: env('CARACAL_ZONE_ID'),
    redisUrl: env('REDIS_URL'),
  })

  const zone = env('CARACAL_ZONE_ID') ?? DEFAULT_ZONE_ID
  console.log(
    `STS        ${demo.stsUrl}${demo.sts === undefined ? ' (external)' : ' (embedded development STS, ES256 + RS256)'}`,
  )
  console.log(`JWKS       ${demo.auth.options.jwks.url ?? '(static keys)'}`)
  console.log(
    `MCP server ${demo.mcpUrl.href} (documents: search, get_document; zone ${zone}; revocations ${demo.revocationsKind})`,
  )
  console.log(
    `Backends   ${Object.entries(demo.auth.stats().backend)
      .map(([alg, b]) => `${alg} ${b}`)
      .join(', ')}`,
  )
  console.log('')

  const rows = await runTour({
    mcpUrl: demo.mcpUrl,
    mint: demo.mint,
    revoke: (anchor) => demo.revocations.markRevoked(anchor),
  })
  console.log(formatTour(rows))
  console.log('')
  const failed = rows.filter((r) => r.outcome === 'fail')
  if (failed.length > 0) {
    console.log(`${failed.length} step(s) did not go as expected.`)
    process.exitCode = 1
  }
  if (demo.mint === undefined) {
    console.log(`The STS at ${demo.stsUrl} cannot mint here: call the server with a mandate it issued for`)
    console.log(`audience resource://documents, zone ${zone}, scope "tool:call documents:read", with an agent session.`)
  }

  console.log(`Serving ${demo.mcpUrl.href} — Ctrl-C to stop.`)
  if (demo.mint !== undefined) {
    // A development mandate from the development STS, printed on purpose so it can be pasted.
    const token = await demo.mint({})
    console.log('')
    console.log('A fresh mandate (valid 5 minutes):')
    console.log(token)
    console.log('')
    console.log('Try it:')
    const call = JSON.stringify({
      jsonrpc: '2.0',
      id: 1,
      method: 'tools/call',
      params: { name: 'search', arguments: { query: 'revocation' } },
    })
    console.log(
      `curl -s ${demo.mcpUrl.href} -H 'content-type: application/json' -H 'accept: application/json, text/event-stream' ` +
        `-H 'authorization: Bearer ${token}' -d '${call}'`,
    )
    if (demo.sts !== undefined)
      console.log(
        `More mandates: curl -s -X POST ${demo.stsUrl}/mint -d '{"claims":{"scope":"tool:call documents:read"}}'`,
      )
  }

  let stopping = false
  const stop = (): void => {
    if (stopping) return
    stopping = true
    demo.close().then(
      () => process.exit(),
      () => process.exit(1),
    )
  }
  process.once('SIGINT', stop)
  process.once('SIGTERM', stop)
}

main().catch((error: unknown) => {
  const message = error instanceof Error ? error.message : String(error)
  const cause = error instanceof Error && error.cause instanceof Error ? ` (${error.cause.message})` : ''
  console.error(`npm start failed: ${message}${cause}`)
  process.exit(1)
})

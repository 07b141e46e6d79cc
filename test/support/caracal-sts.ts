/**
 * A stand-in for a Caracal STS as a real deployment runs it: the development STS with a zone, so
 * its keys are served only at `/.well-known/jwks.json?zone_id=<zone>` (400 without `zone_id`),
 * minting mandates with the claim shapes the real STS writes — delegation chains whose hops are
 * `{ application_id, agent_session_id, delegation_edge_id }`, `hop_count` and
 * `delegation_graph_epoch` — and counting what was asked of its JWKS endpoint.
 */
import { createServer, request, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { startDevSts, type DevSts } from '../../src/dev/index.js'
import type { Algorithm } from '../../src/jws/algorithms.js'

export interface CaracalSts {
  /** What a gateway configures as `issuer`: the STS's URL. */
  readonly issuer: string
  readonly zoneId: string
  readonly audience: string
  readonly dev: DevSts
  /** Paths with query, as requested of the JWKS endpoint. */
  readonly jwksRequests: string[]
  /** A resource mandate from an agent session, one delegation hop deep, at `epoch`. */
  mintDelegated(options?: { epoch?: number; alg?: Algorithm; overrides?: Record<string, unknown> }): string
  close(): Promise<void>
}

export async function startCaracalSts(zoneId = 'zone-prod'): Promise<CaracalSts> {
  const audience = 'resource://documents'
  const jwksRequests: string[] = []
  // The dev STS signs; a front that records each request sits where clients reach the STS.
  let front: Server | undefined
  const dev = await startDevSts({ zoneId, audience })
  const target = new URL(dev.url)
  front = createServer((req, res) => {
    if ((req.url ?? '').startsWith('/.well-known/jwks.json')) jwksRequests.push(req.url ?? '')
    const upstream = request(
      { host: target.hostname, port: target.port, path: req.url, method: req.method, headers: req.headers },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers)
        answer.pipe(res)
      },
    )
    upstream.on('error', () => res.writeHead(502).end())
    req.pipe(upstream)
  })
  await new Promise<void>((resolve) => front!.listen(0, '127.0.0.1', resolve))
  const issuer = `http://127.0.0.1:${(front.address() as AddressInfo).port}`
  let counter = 0
  return {
    issuer,
    zoneId,
    audience,
    dev,
    jwksRequests,
    mintDelegated({ epoch = 1, alg, overrides = {} } = {}) {
      counter++
      const edge = `edge-${counter}`
      const claims = {
        iss: issuer,
        sub: 'user-7',
        client_id: 'app-frontend',
        agent_session_id: `agent-session-${counter}`,
        delegation_edge_id: edge,
        source_session_id: `source-session-${counter}`,
        target_session_id: `agent-session-${counter}`,
        delegation_path: ['app-orchestrator', 'app-frontend'],
        delegation_chain: [
          {
            application_id: 'app-orchestrator',
            agent_session_id: `upstream-${counter}`,
            delegation_edge_id: `up-${edge}`,
          },
        ],
        hop_count: 1,
        delegation_graph_epoch: epoch,
        ...overrides,
      }
      return dev.mint(claims, alg === undefined ? {} : { alg })
    },
    async close() {
      await new Promise<void>((resolve) => front!.close(() => resolve()))
      front.closeAllConnections()
      await dev.close()
    },
  }
}

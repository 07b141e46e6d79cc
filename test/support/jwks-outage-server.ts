/**
 * A real JWKS endpoint on 127.0.0.1 that can be switched between the ways an STS fails (README
 * "Keys (JWKS)"): down (nothing listens on the port: connection refused), slow in three ways,
 * garbage answers, and bodies larger than `jwks.maxBytes`. It keeps its port while down, so a
 * verifier pointed at it recovers with no restart. Requests are counted per path.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { JWKS_PATH, sendJson } from './jwks-server.js'

export type OutageBehaviour =
  | 'healthy'
  /** Nothing listens: every connection is refused. */
  | 'down'
  /** Answers correctly, but only after `lateMs` (longer than the verifier's timeoutMs). */
  | 'late'
  /** Sends 200 and its headers, the first bytes of a JWKS, then nothing. */
  | 'stalled-body'
  /** Sends 200, then one byte of JSON whitespace every 20 ms, forever. */
  | 'trickle'
  /** 200 with half a body, then the connection is dropped. */
  | 'dropped-mid-body'
  | 'html'
  | 'invalid-json'
  | 'json-without-keys'
  | 'http-500'
  | 'http-503'
  /** 302 to `REDIRECT_TARGET`, which serves a valid JWKS (that must never be read). */
  | 'redirect'
  /** A body of `HUGE_BYTES` announced by Content-Length. */
  | 'huge-content-length'
  /** A body that never ends, chunked, written as fast as the socket takes it. */
  | 'huge-chunked'
  /** A body of `HUGE_BYTES` without Content-Length or chunking, ended by closing the connection. */
  | 'huge-until-close'

export const REDIRECT_TARGET = '/elsewhere/jwks.json'
export const HUGE_BYTES = 1024 * 1024

export interface OutageServer {
  readonly issuer: string
  readonly jwksUrl: string
  /** Requests received, by path (none while down: nothing is listening). */
  readonly hits: Map<string, number>
  readonly jwksHits: number
  /** Bytes written by the endless bodies, to show the client stopped reading. */
  readonly endlessBytes: number
  /** Requests whose response is still open (a slow behaviour holds them). */
  readonly open: number
  /** What a healthy endpoint (and the redirect target) serves. */
  keys: { keys: unknown[] }
  /** How long `late` waits before answering. Default 3 s. */
  lateMs: number
  readonly behaviour: OutageBehaviour
  /** Switches behaviour; going to or from `down` closes or reopens the listener on the same port. */
  set(behaviour: OutageBehaviour): Promise<void>
  close(): Promise<void>
}

export async function startOutageServer(keys: { keys: unknown[] }): Promise<OutageServer> {
  const hits = new Map<string, number>()
  const sockets = new Set<Socket>()
  let behaviour: OutageBehaviour = 'healthy'
  let endlessBytes = 0
  let open = 0
  let listening = false
  let port = 0

  const state = {
    keys,
    lateMs: 3_000,
    hits,
    issuer: '',
    jwksUrl: '',
    get jwksHits() {
      return hits.get(JWKS_PATH) ?? 0
    },
    get endlessBytes() {
      return endlessBytes
    },
    get open() {
      return open
    },
    get behaviour() {
      return behaviour
    },
    async set(next: OutageBehaviour) {
      if (next === 'down' && listening) await stop()
      if (next !== 'down' && !listening) await listen(port)
      behaviour = next
    },
    close: () => (listening ? stop() : Promise.resolve()),
  }

  const server = createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0]!
    hits.set(path, (hits.get(path) ?? 0) + 1)
    open++
    res.on('close', () => open--)
    if (path === REDIRECT_TARGET) return sendJson(res, state.keys)
    if (path !== JWKS_PATH) return void res.writeHead(404).end()
    void answer(behaviour, req, res).catch(() => res.destroy())
  })
  server.on('connection', (socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
  })

  async function answer(b: OutageBehaviour, _req: IncomingMessage, res: ServerResponse): Promise<void> {
    const gone = (): boolean => res.destroyed || res.writableEnded
    switch (b) {
      case 'healthy':
      case 'down':
        return sendJson(res, state.keys)
      case 'late':
        await pause(state.lateMs)
        if (!gone()) sendJson(res, state.keys)
        return
      case 'stalled-body':
        res.writeHead(200, { 'content-type': 'application/json' })
        res.write('{"keys":[')
        return
      case 'trickle':
        res.writeHead(200, { 'content-type': 'application/json' })
        while (!gone()) {
          res.write(' ')
          await pause(20)
        }
        return
      case 'dropped-mid-body': {
        const body = JSON.stringify(state.keys)
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length })
        res.write(body.slice(0, body.length >> 1))
        await pause(10)
        res.destroy()
        return
      }
      case 'html':
        res.writeHead(200, { 'content-type': 'text/html' })
        res.end('<!doctype html><html><body><h1>502 Bad Gateway</h1></body></html>')
        return
      case 'invalid-json':
        res.writeHead(200, { 'content-type': 'application/json' })
        res.end(JSON.stringify(state.keys).slice(0, -1))
        return
      case 'json-without-keys':
        return sendJson(res, { error: 'zone not found' })
      case 'http-500':
      case 'http-503':
        res.writeHead(b === 'http-500' ? 500 : 503, { 'content-type': 'application/json' })
        res.end(JSON.stringify(state.keys))
        return
      case 'redirect':
        res.writeHead(302, { location: REDIRECT_TARGET }).end()
        return
      case 'huge-content-length':
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': HUGE_BYTES })
        res.end(padded(HUGE_BYTES))
        return
      case 'huge-chunked': {
        res.writeHead(200, { 'content-type': 'application/json' })
        res.write('{"keys":[],"pad":"')
        const chunk = 'x'.repeat(16 * 1024)
        while (!gone()) {
          endlessBytes += chunk.length
          if (!res.write(chunk)) await new Promise((r) => res.once('drain', r).once('close', r))
        }
        return
      }
      case 'huge-until-close': {
        // Written to the socket by hand: node:http would otherwise add Content-Length or chunking.
        const socket = res.socket!
        socket.write('HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n')
        socket.end(padded(HUGE_BYTES))
        return
      }
    }
  }

  function listen(at: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(at, '127.0.0.1', () => {
        server.off('error', reject)
        listening = true
        resolve()
      })
    })
  }

  function stop(): Promise<void> {
    listening = false
    return new Promise<void>((resolve) => {
      server.close(() => resolve())
      for (const s of sockets) s.destroy()
    })
  }

  await listen(0)
  port = (server.address() as AddressInfo).port
  state.issuer = `http://127.0.0.1:${port}`
  state.jwksUrl = `${state.issuer}${JWKS_PATH}`
  return state
}

/** A JSON object of exactly `bytes` bytes, with no keys array a verifier could use. */
function padded(bytes: number): string {
  const open = '{"keys":[],"pad":"'
  return `${open}${'x'.repeat(bytes - open.length - 2)}"}`
}

/** Unref'd: a slow answer still pending when a test ends must not keep the worker alive. */
const pause = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms).unref())

/**
 * Loading the wasm module where it does not come by itself (README "Runtimes"): `initWasm` with
 * each kind of source, a load under way that `verify` and `auto` wait for (never a quiet fall back
 * to a slower backend), and a load that failed, whose reason is in the error a forced `wasm`
 * raises and in `stats()`. Each test gets fresh modules with `#wasm-source` replaced, standing in
 * for a runtime (browser, workerd without the module) whose automatic load is not Node's.
 */
import { readFileSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import type { AutomaticWasm } from '../src/backends/wasm-source.js'
import { generateSigningKey, signJws, type SigningKey } from '../src/dev/index.js'

const WASM = readFileSync(new URL('../src/backends/caracal.wasm', import.meta.url))
const issuer = 'https://sts.example'
const audience = 'resource://wasm-loading'

let server: Server
let base: string
beforeAll(async () => {
  server = createServer((req, res) => {
    if (req.url === '/caracal.wasm') res.writeHead(200, { 'content-type': 'application/wasm' }).end(WASM)
    else res.writeHead(404).end()
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())))
afterEach(() => {
  vi.doUnmock('#wasm-source')
  vi.useRealTimers()
})

/** The library, loaded afresh, with this automatic load in place of Node's. */
async function libraryWith(automatic: () => AutomaticWasm) {
  vi.resetModules()
  vi.doMock('#wasm-source', () => ({ automaticWasm: automatic }))
  const lib = await import('../src/index.js')
  const jws = await import('../src/jws/index.js')
  return { ...lib, verifyJws: jws.verifyJws }
}

const none = (): AutomaticWasm => ({ kind: 'none', broken: false, reason: 'no automatic load in this test' })

function mint(signer: SigningKey): string {
  const now = Math.floor(Date.now() / 1000)
  return signJws(signer, {
    iss: issuer,
    aud: audience,
    sub: 'u',
    sub_type: 'user',
    client_id: 'c',
    sid: 's',
    root_sid: 'r',
    jti: 'j',
    use: 'resource',
    iat: now,
    exp: now + 60,
  })
}

const es = generateSigningKey('ES256', 'es')

describe('initWasm', () => {
  it.each([
    ['a WebAssembly.Module', () => new WebAssembly.Module(WASM)],
    ['an ArrayBuffer', () => WASM.buffer.slice(WASM.byteOffset, WASM.byteOffset + WASM.byteLength)],
    ['a Uint8Array', () => new Uint8Array(WASM)],
    ['a Response', () => new Response(WASM, { headers: { 'content-type': 'application/wasm' } })],
    ['a URL', () => new URL('/caracal.wasm', base)],
    ['a string URL', () => `${base}/caracal.wasm`],
    ['a promise of a Response', () => fetch(`${base}/caracal.wasm`)],
  ])('loads the module from %s; wasm then verifies, and a second call changes nothing', async (_kind, source) => {
    const lib = await libraryWith(none)
    const options = { issuer, audience, revocations: new lib.InMemoryRevocationStore(), jwks: { keys: [es.publicJwk] } }
    expect(() => new lib.CaracalAuth({ ...options, backend: 'wasm' })).toThrow(
      /option "backend" "wasm" is not available: no automatic load in this test/,
    )
    await lib.initWasm(source())
    const auth = new lib.CaracalAuth({ ...options, backend: 'wasm' })
    expect((await auth.verify(mint(es))).sub).toBe('u')
    expect(auth.stats().backends.wasm).toEqual({ state: 'ready' })
    await lib.initWasm(new Uint8Array(0)) // idempotent: the module is loaded, nothing is compiled
    expect(new lib.CaracalAuth(options).stats().backend.ES256).toBe('wasm')
    await auth.close()
  })

  it('a source that does not load rejects with why; stats() and the forced backend say it too', async () => {
    const lib = await libraryWith(none)
    const options = { issuer, audience, revocations: new lib.InMemoryRevocationStore(), jwks: { keys: [es.publicJwk] } }
    await expect(lib.initWasm(new URL('/missing.wasm', base))).rejects.toThrow(
      `caracal.wasm could not be loaded: caracal.wasm could not be fetched from ${base}/missing.wasm (HTTP 404)`,
    )
    const reason = `caracal.wasm could not be fetched from ${base}/missing.wasm (HTTP 404)`
    const auto = new lib.CaracalAuth(options)
    expect(auto.stats().backends.wasm).toEqual({ state: 'unavailable', reason })
    // A fetch that failed is the platform's limit: auto does without, saying why (above).
    expect(auto.stats().backend.ES256).toBe('node')
    expect(() => new lib.CaracalAuth({ ...options, backend: 'wasm' })).toThrow(
      `CaracalAuth option "backend" "wasm" is not available: ${reason}`,
    )
    await expect(lib.verifyJws(mint(es), { keys: [es.publicJwk] }, { backend: 'wasm' })).rejects.toThrow(
      `backend "wasm" is not available: ${reason}`,
    )
    // Bytes that are not the module are a broken build: an error wherever wasm is asked for.
    await expect(lib.initWasm(Uint8Array.from([0, 97, 115, 109, 1, 0, 0, 0, 9]))).rejects.toThrow(
      /^caracal\.wasm could not be loaded: caracal\.wasm is not a module this engine can compile \(.+\)$/,
    )
    expect(() => new lib.CaracalAuth(options)).toThrow(/^wasm backend: caracal\.wasm is not a module this engine/)
  })
})

describe("the browser build's own load (the module inline in the bundle)", () => {
  it.each([
    ['the library decoder (engines without Uint8Array.fromBase64)', false],
    ['Uint8Array.fromBase64', true],
  ])('decodes with %s, compiles, and wasm verifies ES256 and refuses a tampered token', async (_how, native) => {
    const real = (Uint8Array as unknown as { fromBase64?: unknown }).fromBase64
    let nativeCalls = 0
    // Node 20 has no fromBase64: stand one in (over Buffer) to take the native branch.
    const stand = (text: string, options: { alphabet: string }) => {
      nativeCalls++
      expect(options).toEqual({ alphabet: 'base64url' })
      return new Uint8Array(Buffer.from(text, 'base64url'))
    }
    Object.defineProperty(Uint8Array, 'fromBase64', { value: native ? stand : undefined, configurable: true })
    try {
      vi.resetModules()
      vi.doMock('#wasm-source', () => import('../src/backends/wasm-source.browser.js'))
      const lib = await import('../src/index.js')
      const auth = new lib.CaracalAuth({
        issuer,
        audience,
        revocations: new lib.InMemoryRevocationStore(),
        backend: 'wasm',
        jwks: { keys: [es.publicJwk] },
      })
      const token = mint(es)
      expect((await auth.verify(token)).sub).toBe('u')
      const tampered = `${token.slice(0, -2)}${token.endsWith('AA') ? 'AQ' : 'AA'}`
      await expect(auth.verify(tampered)).rejects.toMatchObject({
        code: 'invalid_token',
        description: 'signature verification failed',
      })
      expect(auth.stats().backends.wasm).toEqual({ state: 'ready' })
      expect(nativeCalls).toBe(native ? 1 : 0)
      await auth.close()
    } finally {
      Object.defineProperty(Uint8Array, 'fromBase64', { value: real, configurable: true })
    }
  })
})

describe('an automatic load under way (browsers)', () => {
  it('verify and auto wait for it, then wasm serves ES256', async () => {
    let arrive!: (response: Response) => void
    const later = new Promise<Response>((resolve) => {
      arrive = resolve
    })
    const lib = await libraryWith(() => ({ kind: 'later', source: later, hint: '' }))
    const auth = new lib.CaracalAuth({
      issuer,
      audience,
      revocations: new lib.InMemoryRevocationStore(),
      jwks: { keys: [es.publicJwk] },
    })
    expect(auth.stats().backend).toEqual({ ES256: 'loading', RS256: 'loading' })
    expect(auth.stats().backends.wasm).toEqual({ state: 'loading' })
    let settled = false
    const verified = auth.verify(mint(es)).finally(() => {
      settled = true
    })
    await new Promise((resolve) => setTimeout(resolve, 50))
    expect(settled).toBe(false)
    arrive(new Response(WASM, { headers: { 'content-type': 'application/wasm' } }))
    expect((await verified).sub).toBe('u')
    expect(auth.stats().backend).toEqual({ ES256: 'wasm', RS256: 'node' })
    await auth.close()
  })

  it('an initWasm given while the automatic load is under way is used if that load fails', async () => {
    const lib = await libraryWith(() => ({
      kind: 'later',
      source: Promise.resolve(new Response('', { status: 404 })),
      hint: '; call initWasm(source)',
    }))
    const auth = new lib.CaracalAuth({
      issuer,
      audience,
      revocations: new lib.InMemoryRevocationStore(),
      jwks: { keys: [es.publicJwk] },
    })
    const loading = lib.initWasm(new Uint8Array(WASM))
    expect((await auth.verify(mint(es))).sub).toBe('u')
    await loading
    expect(auth.stats().backend.ES256).toBe('wasm')
  })

  it('a forced wasm whose load fails: verify is unavailable (503), warmup and stats() give the reason', async () => {
    const lib = await libraryWith(() => ({
      kind: 'later',
      source: Promise.resolve(new Response('', { status: 404 })),
      hint: '; call initWasm(source)',
    }))
    const reason = 'caracal.wasm could not be fetched from the response given (HTTP 404); call initWasm(source)'
    const auth = new lib.CaracalAuth({
      issuer,
      audience,
      revocations: new lib.InMemoryRevocationStore(),
      jwks: { keys: [es.publicJwk] },
      backend: 'wasm',
    })
    const error = await auth.verify(mint(es)).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(lib.CaracalAuthError)
    expect(error).toMatchObject({ code: 'invalid_token', status: 401, unavailable: true })
    expect(((error as Error).cause as Error).message).toBe(`backend "wasm" is not available: ${reason}`)
    await expect(auth.warmup()).rejects.toThrow(`backend "wasm" is not available: ${reason}`)
    expect(auth.stats().backends.wasm).toEqual({ state: 'unavailable', reason })
    expect(auth.stats().backend).toEqual({ ES256: 'unavailable', RS256: 'unavailable' })
  })

  it('is waited for at most WASM_WAIT_MS: then auto goes on without it', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] })
    const lib = await libraryWith(() => ({ kind: 'later', source: new Promise<Response>(() => {}), hint: '' }))
    const { WASM_WAIT_MS } = await import('../src/backends/index.js')
    const auth = new lib.CaracalAuth({
      issuer,
      audience,
      revocations: new lib.InMemoryRevocationStore(),
      jwks: { keys: [es.publicJwk] },
    })
    const verified = auth.verify(mint(es))
    await vi.advanceTimersByTimeAsync(WASM_WAIT_MS)
    expect((await verified).sub).toBe('u')
    expect(auth.stats().backend.ES256).toBe('node')
  })
})

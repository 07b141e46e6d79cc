/**
 * One bounded JWKS download: a deadline for the whole exchange, a cap on the body, no redirects
 * (a redirect would let whoever controls the first host pick the keys), JSON only.
 */
export interface FetchJwksOptions {
  readonly timeoutMs: number
  readonly maxBytes: number
  readonly fetch: typeof globalThis.fetch
  readonly signal?: AbortSignal
}

export class JwksFetchError extends Error {
  override readonly name = 'JwksFetchError'
}

export async function fetchJwks(url: string, options: FetchJwksOptions): Promise<unknown> {
  const deadline = AbortSignal.timeout(options.timeoutMs)
  const signal = options.signal === undefined ? deadline : AbortSignal.any([deadline, options.signal])
  let response: Response
  try {
    response = await options.fetch(url, { signal, redirect: 'error', headers: { accept: 'application/json' } })
  } catch (cause) {
    throw new JwksFetchError(deadline.aborted ? `JWKS fetch timed out after ${options.timeoutMs} ms` : 'JWKS fetch failed', { cause })
  }
  if (response.status !== 200) {
    await response.body?.cancel().catch(() => {})
    throw new JwksFetchError(`JWKS endpoint answered HTTP ${response.status}`)
  }
  const declared = Number(response.headers.get('content-length'))
  if (Number.isFinite(declared) && declared > options.maxBytes) {
    await response.body?.cancel().catch(() => {})
    throw new JwksFetchError(`JWKS larger than ${options.maxBytes} bytes`)
  }
  const text = await readCapped(response, options.maxBytes, deadline, options.timeoutMs)
  try {
    return JSON.parse(text)
  } catch {
    throw new JwksFetchError('JWKS is not JSON')
  }
}

async function readCapped(response: Response, maxBytes: number, deadline: AbortSignal, timeoutMs: number): Promise<string> {
  const body = response.body
  if (body === null) return ''
  const reader = body.getReader()
  const chunks: Uint8Array[] = []
  let total = 0
  try {
    for (;;) {
      const { done, value } = await reader.read()
      if (done) break
      total += value.byteLength
      // A body without Content-Length (chunked) is bounded here, as it arrives.
      if (total > maxBytes) throw new JwksFetchError(`JWKS larger than ${maxBytes} bytes`)
      chunks.push(value)
    }
  } catch (error) {
    await reader.cancel().catch(() => {})
    if (error instanceof JwksFetchError) throw error
    throw new JwksFetchError(deadline.aborted ? `JWKS fetch timed out after ${timeoutMs} ms` : 'JWKS body could not be read', { cause: error })
  }
  return Buffer.concat(chunks).toString('utf8')
}

/** https is required for a JWKS, except on loopback where there is no network to trust. */
export function checkJwksUrl(url: string): string | undefined {
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    return 'is not a URL'
  }
  if (parsed.protocol === 'https:') return undefined
  if (parsed.protocol === 'http:' && isLoopbackHost(parsed.hostname)) return undefined
  return 'must use https (http is accepted only on loopback)'
}

export function isLoopbackHost(hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, '')
  return host === 'localhost' || host === '::1' || /^127(\.\d{1,3}){3}$/.test(host)
}

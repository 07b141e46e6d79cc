/**
 * One bounded JWKS download: a deadline for the whole exchange, a cap on the body, no redirects
 * (a redirect would let whoever controls the first host pick the keys), JSON only. Every failure
 * is a `JwksFetchError` whose message says what went wrong, for `stats().jwks.lastError` (README
 * "Keys (JWKS)").
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
  // Our own timer and controller, held strongly until we are done: on Node 20 a fetch whose only
  // deadline is AbortSignal.timeout() (or AbortSignal.any of it) can lose that signal to GC, and a
  // stalled body then hangs the JWKS flight — and every request waiting on it — forever.
  const controller = new AbortController()
  let timedOut = false
  const timer = setTimeout(() => {
    timedOut = true
    controller.abort()
  }, options.timeoutMs)
  const onAbort = (): void => controller.abort()
  if (options.signal?.aborted === true) controller.abort()
  else options.signal?.addEventListener('abort', onAbort, { once: true })
  const failure = (what: string): string => (timedOut ? `JWKS fetch timed out after ${options.timeoutMs} ms` : what)
  try {
    let response: Response
    try {
      response = await options.fetch(url, {
        signal: controller.signal,
        // 'manual' rather than 'error': the 3xx is then refused below like any other status, and
        // the operator reads "HTTP 302" in lastError instead of an anonymous network failure.
        redirect: 'manual',
        headers: { accept: 'application/json' },
      })
    } catch (cause) {
      throw new JwksFetchError(failure(withCode('JWKS fetch failed', cause)), { cause })
    }
    if (response.status !== 200) {
      await response.body?.cancel().catch(() => {})
      const redirect = (response.status >= 300 && response.status < 400) || response.type === 'opaqueredirect'
      throw new JwksFetchError(
        `JWKS endpoint answered HTTP ${response.status}${redirect ? ' (a redirect, not followed)' : ''}`,
      )
    }
    const declared = Number(response.headers.get('content-length'))
    if (Number.isFinite(declared) && declared > options.maxBytes) {
      await response.body?.cancel().catch(() => {})
      throw new JwksFetchError(`JWKS larger than ${options.maxBytes} bytes`)
    }
    const text = await readCapped(response, options.maxBytes, controller.signal, failure)
    let jwks: unknown
    try {
      jwks = JSON.parse(text)
    } catch {
      throw new JwksFetchError('JWKS is not JSON')
    }
    // A body that is not a JWKS is a broken answer, not an empty key set: the keys we have stay.
    if (typeof jwks !== 'object' || jwks === null || !Array.isArray((jwks as { keys?: unknown }).keys)) {
      throw new JwksFetchError('JWKS has no "keys" array')
    }
    return jwks
  } finally {
    clearTimeout(timer)
    options.signal?.removeEventListener('abort', onAbort)
  }
}

async function readCapped(
  response: Response,
  maxBytes: number,
  signal: AbortSignal,
  failure: (what: string) => string,
): Promise<string> {
  const body = response.body
  if (body === null) return ''
  const reader = body.getReader()
  // Each read races the abort itself rather than trusting the stream to notice it.
  const aborted = new Promise<never>((_, reject) => {
    if (signal.aborted) reject(new Error('aborted'))
    else signal.addEventListener('abort', () => reject(new Error('aborted')), { once: true })
  })
  aborted.catch(() => {})
  // Not fatal, and the BOM kept: a body that is not UTF-8 JSON fails as "not JSON" (JSON.parse).
  const decoder = new TextDecoder('utf-8', { ignoreBOM: true })
  let text = ''
  let total = 0
  try {
    for (;;) {
      const { done, value } = await Promise.race([reader.read(), aborted])
      if (done) break
      total += value.byteLength
      // A body without Content-Length (chunked) is bounded here, as it arrives.
      if (total > maxBytes) throw new JwksFetchError(`JWKS larger than ${maxBytes} bytes`)
      text += decoder.decode(value, { stream: true })
    }
  } catch (error) {
    // Not awaited: cancelling a stalled stream must not become the next thing that hangs.
    void reader.cancel().catch(() => {})
    if (error instanceof JwksFetchError) throw error
    throw new JwksFetchError(failure(withCode('JWKS body could not be read', error)), { cause: error })
  }
  return text + decoder.decode()
}

/**
 * `what`, with the system or undici error code of its cause when there is one (ECONNREFUSED,
 * ENOTFOUND, UND_ERR_SOCKET…): "the STS refused the connection" and "the DNS name is wrong" call
 * for different fixes. Only a code of capitals is copied, never a message: this text may reach a
 * client in an error description.
 */
function withCode(what: string, error: unknown): string {
  let e: unknown = error
  for (let depth = 0; depth < 4 && typeof e === 'object' && e !== null; depth++) {
    const code = (e as { code?: unknown }).code
    if (typeof code === 'string' && /^[A-Z][A-Z0-9_]{1,39}$/.test(code)) return `${what} (${code})`
    e = (e as { cause?: unknown }).cause
  }
  return what
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

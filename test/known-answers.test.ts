/**
 * `auto` trusts a backend only once it verifies a fixed valid signature and refuses the same
 * signature over an altered message (docs/architecture.md "Backends"): a backend that throws,
 * accepts everything or refuses everything is passed over for the next, and `stats().backends`
 * says why. Fakes go in through `backendsForTests`, the registry's test hook.
 */
import { createPublicKey, verify } from 'node:crypto'
import { afterEach, describe, expect, it } from 'vitest'
import { CaracalAuth, InMemoryRevocationStore } from '../src/index.js'
import { backendStatuses, backendsForTests, knownAnswerFailure, resolveBackends } from '../src/backends/index.js'
import { KNOWN_ANSWERS, KNOWN_ANSWER_MESSAGE, KNOWN_ANSWER_TAMPERED } from '../src/backends/known-answers.js'
import { nobleBackend } from '../src/backends/noble.js'
import { nodeBackend, nodeSha256 } from '../src/backends/node.js'
import type { SignatureBackend } from '../src/backends/types.js'
import { wasmBackend } from '../src/backends/wasm.js'
import { verifyJws } from '../src/jws/index.js'
import { generateSigningKey, signJws } from '../src/dev/index.js'

type Verify = SignatureBackend extends { importKey(m: never): infer K } ? K : never

/** A backend that imports through `real` but answers `verify` with `answer`. */
function fake(real: SignatureBackend, answer: (real: Verify, input: Uint8Array, sig: Uint8Array) => boolean) {
  return {
    name: real.name,
    supports: (alg) => real.supports(alg),
    importKey(material) {
      const key = real.importKey(material)
      return {
        ...key,
        verifyDigest: undefined,
        verifyMandate: undefined,
        verify: (input, sig) => answer(key, input, sig),
      }
    },
  } satisfies SignatureBackend
}

const throwing = (real: SignatureBackend) =>
  fake(real, () => {
    throw new TypeError('The "key" argument must be of type CryptoKey') // as workerd's nodejs_compat throws
  })
const acceptsAll = (real: SignatureBackend) => fake(real, () => true)
const refusesAll = (real: SignatureBackend) => fake(real, () => false)

const issuer = 'https://sts.example'
const audience = 'resource://kat'

function mint(alg: 'ES256' | 'RS256', signer: ReturnType<typeof generateSigningKey>): string {
  const now = Math.floor(Date.now() / 1000)
  return signJws(signer, {
    iss: issuer,
    aud: audience,
    sub: 'u',
    sub_type: 'user',
    client_id: 'c',
    sid: 's',
    root_sid: 'r',
    jti: `j-${alg}`,
    use: 'resource',
    iat: now,
    exp: now + 60,
  })
}

async function verifiesWith(auth: CaracalAuth, alg: 'ES256' | 'RS256', signer: ReturnType<typeof generateSigningKey>) {
  return (await auth.verify(mint(alg, signer))).sub
}

afterEach(() => backendsForTests.restore())

describe('known-answer vectors', () => {
  it.each(['ES256', 'RS256'] as const)(
    '%s: node:crypto verifies the signature and refuses it over the altered message',
    (alg) => {
      const v = KNOWN_ANSWERS[alg]
      const key = createPublicKey({ key: { ...v.jwk }, format: 'jwk' })
      const options = alg === 'ES256' ? { key, dsaEncoding: 'ieee-p1363' as const } : key
      const signature = Buffer.from(v.signature, 'base64url')
      expect(verify('sha256', Buffer.from(KNOWN_ANSWER_MESSAGE), options, signature)).toBe(true)
      expect(verify('sha256', Buffer.from(KNOWN_ANSWER_TAMPERED), options, signature)).toBe(false)
    },
  )

  it.each(['ES256', 'RS256'] as const)('%s: every real backend passes', (alg) => {
    for (const backend of [wasmBackend, nodeBackend, nobleBackend])
      expect(knownAnswerFailure(backend, alg)).toBeUndefined()
  })
})

describe('auto chooses by the known-answer test', () => {
  it.each([
    ['throws', throwing, /^threw verifying the known-answer RS256 signature \(TypeError: The "key" argument/],
    ['accepts everything', acceptsAll, /^accepted the known-answer RS256 signature over an altered message$/],
    ['refuses everything', refusesAll, /^refused the known-answer RS256 signature$/],
  ])('a node backend that %s is passed over for wasm on RS256, and stats() says why', async (_what, make, reason) => {
    backendsForTests.replace({ node: make(nodeBackend) }, nodeSha256)
    const es = generateSigningKey('ES256', 'es')
    const rs = generateSigningKey('RS256', 'rs')
    const auth = new CaracalAuth({
      issuer,
      audience,
      revocations: new InMemoryRevocationStore(),
      jwks: { keys: [es.publicJwk, rs.publicJwk] },
    })
    const stats = auth.stats()
    expect(stats.backend).toEqual({ ES256: 'wasm', RS256: 'wasm' })
    expect(stats.backends.node.state).toBe('ready')
    expect(stats.backends.node.refused?.RS256).toMatch(reason)
    // wasm came first for ES256: node was never tried there.
    expect(stats.backends.node.refused?.ES256).toBeUndefined()
    expect(await verifiesWith(auth, 'RS256', rs)).toBe('u')
    expect(await verifiesWith(auth, 'ES256', es)).toBe('u')
    await auth.close()
  })

  it('runs the test for an algorithm only once a key of it is imported', () => {
    backendsForTests.replace({ node: throwing(nodeBackend) }, nodeSha256)
    const pick = resolveBackends('auto')
    expect(pick('ES256').name).toBe('wasm')
    expect(backendStatuses().node.refused).toBeUndefined()
    expect(pick('RS256').name).toBe('wasm')
    expect(backendStatuses().node.refused?.RS256).toMatch(/^threw verifying the known-answer RS256 signature/)
  })

  it('with wasm and node both untrustworthy, noble serves; a failing noble leaves nothing and says so', () => {
    backendsForTests.replace({ wasm: throwing(wasmBackend), node: acceptsAll(nodeBackend) }, nodeSha256)
    const picked = resolveBackends('auto')
    expect([picked('ES256').name, picked('RS256').name]).toEqual(['noble', 'noble'])
    backendsForTests.replace({ wasm: refusesAll(wasmBackend), node: undefined, noble: refusesAll(nobleBackend) })
    expect(() => resolveBackends('auto')('ES256')).toThrow(
      /^no signature backend passed the known-answer test for ES256$/,
    )
  })

  it("a forced backend is the caller's choice: no known-answer test, and a throw in verify is never a quiet refusal", async () => {
    backendsForTests.replace({ node: throwing(nodeBackend) }, nodeSha256)
    const rs = generateSigningKey('RS256', 'rs')
    const auth = new CaracalAuth({
      issuer,
      audience,
      revocations: new InMemoryRevocationStore(),
      jwks: { keys: [rs.publicJwk] },
      backend: 'node',
    })
    expect(auth.stats().backend).toEqual({ ES256: 'node', RS256: 'node' })
    await expect(verifiesWith(auth, 'RS256', rs)).rejects.toMatchObject({
      code: 'invalid_token',
      description: 'token could not be verified',
    })
    // The low-level layer lets it through as what it is, not as "signature verification failed".
    await expect(verifyJws(mint('RS256', rs), { keys: [rs.publicJwk] }, { backend: 'node' })).rejects.toThrow(
      'The "key" argument must be of type CryptoKey',
    )
  })
})

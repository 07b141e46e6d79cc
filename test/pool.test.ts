/**
 * The verification pool (README "Several cores in one process"): `workers` is validated like every
 * option; a pooled verifier gives the claims and errors the main thread gives (the error table and
 * the attack corpus also run through a pool, in their own files); cold tokens are really verified
 * by the workers; key rotation never lets a worker answer with a key the main thread dropped; a
 * crashed or hung worker is replaced and its tokens retried once, then refused, never left waiting;
 * `close()` ends the workers, and a process that forgets to close still exits.
 */
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { availableParallelism, tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { type CaracalAuth, CaracalAuthError, InMemoryReplayStore, type Claims } from '../src/index.js'
import { generateSigningKey } from '../src/dev/sign-jws.js'
import { autoWorkers, sharingPool } from '../src/pool/index.js'
import { verifierPool, type VerifierPool } from '../src/pool/types.js'
import { startJwksServer } from './support/jwks-server.js'
import { AUDIENCE, ISSUER, NOW_MS, mint, rsKey } from './support/mandates.js'
import { rejection, testVerifier, type TestVerifier } from './support/verifiers.js'

const opened: TestVerifier[] = []
function verifier(extra: Parameters<typeof testVerifier>[1] = {}): TestVerifier {
  const v = testVerifier('auto', extra)
  opened.push(v)
  return v
}
afterAll(async () => {
  for (const v of opened) await v.auth.close()
})

function poolOf(auth: CaracalAuth): VerifierPool {
  const pool = auth[verifierPool]
  if (pool === undefined) throw new Error('no pool')
  return pool
}

async function outcome(auth: CaracalAuth, token: string): Promise<Claims | { code: string; description: string }> {
  try {
    return await auth.verify(token)
  } catch (e) {
    expect(e).toBeInstanceOf(CaracalAuthError)
    const { code, description } = e as CaracalAuthError
    return { code, description }
  }
}

const until = async (done: () => boolean, ms = 20_000): Promise<void> => {
  const end = Date.now() + ms
  while (!done()) {
    if (Date.now() > end) throw new Error('timed out waiting')
    await new Promise((r) => setTimeout(r, 5))
  }
}

describe('the workers option', () => {
  it.each([-1, 1.5, '2', 'Auto', null, 65])('refuses %j', (workers) => {
    expect(() => testVerifier('auto', { workers: workers as number })).toThrow(
      new TypeError('CaracalAuth option "workers" must be "auto" or an integer from 0 to 64'),
    )
  })

  it("'auto' is one worker per core but the main thread's (none on one core), at most 64", () => {
    expect([1, 2, 4, 100].map(autoWorkers)).toEqual([0, 1, 3, 64])
    const v = testVerifier('auto', { workers: 'auto' })
    opened.push(v)
    expect(v.auth[verifierPool]?.internals.threadIds().length ?? 0).toBe(autoWorkers(availableParallelism()))
  })

  it('is off by default and with 0: no pool, no thread', () => {
    expect(testVerifier('auto').auth[verifierPool]).toBeUndefined()
    expect(testVerifier('auto', { workers: 0 }).auth[verifierPool]).toBeUndefined()
  })

  it('starts that many workers, shared by the verifiers of withPolicy', () => {
    const v = verifier({ workers: 2 })
    expect(poolOf(v.auth).internals.threadIds()).toHaveLength(2)
    expect(v.auth.withPolicy({ requiredScopes: ['x'] })[verifierPool]).toBe(poolOf(v.auth))
  })
})

describe('a pooled verifier answers as the main thread does', () => {
  const plain = verifier()
  const pooled = verifier({ workers: 2 })
  const tokens = [
    mint(),
    mint({}, rsKey),
    mint({ scope: 'a b', target: ['resource://documents'], delegation_path: ['x', 'y'] }),
    mint({
      delegation_chain: [{ application_id: 'app-a', agent_session_id: 'as-1' }, { application_id: 'app-b' }],
      hop_count: 2,
      delegation_graph_epoch: 3,
      delegation_edge_id: 'edge-1',
      nbf: Math.floor(NOW_MS / 1000) - 5,
    }),
    mint({ exp: Math.floor(NOW_MS / 1000) - 1 }),
    mint({ iss: 'http://127.0.0.1:9999' }),
    mint({ sub: undefined }),
    mint({ hop_count: 1.5 }),
    `${mint().slice(0, -3)}AAA`,
  ]

  it('the same claims (same members in the same order, frozen) and the same errors, on the workers', async () => {
    const before = poolOf(pooled.auth).internals.tokensAnswered()
    for (const token of tokens) {
      const want = await outcome(plain.auth, token)
      const got = await outcome(pooled.auth, token)
      expect(got).toEqual(want)
      if ('sub' in want) {
        expect(Object.keys(got)).toEqual(Object.keys(want))
        expect(Object.isFrozen(got)).toBe(true)
        const chain = (got as Claims).delegationChain
        if (chain !== undefined) expect(Object.isFrozen(chain) && chain.every(Object.isFrozen)).toBe(true)
      }
    }
    // Every token but the one the main thread refuses alone (nothing: all reach a key) went to a worker.
    expect(poolOf(pooled.auth).internals.tokensAnswered() - before).toBe(tokens.length)
  })

  it('applies each verifier’s own policy on the main thread, and caches only what passed it', async () => {
    const strict = pooled.auth.withPolicy({ requiredScopes: ['admin'] })
    const token = mint()
    expect(await outcome(strict, token)).toEqual({
      code: 'insufficient_scope',
      description: 'missing required scope: admin',
    })
    expect((await outcome(pooled.auth, token)) as Claims).toHaveProperty('sub')
    const answered = poolOf(pooled.auth).internals.tokensAnswered()
    // A hit: the pool is not asked again, and the stricter policy still refuses it.
    expect((await outcome(pooled.auth, token)) as Claims).toHaveProperty('sub')
    expect(await rejection(strict.verify(token))).toMatchObject({ code: 'insufficient_scope' })
    expect(poolOf(pooled.auth).internals.tokensAnswered()).toBe(answered)
  })

  it('revocation and single use stay on the main thread', async () => {
    const replayed = verifier({ workers: 1, replay: new InMemoryReplayStore() })
    const token = mint({ sid: 'sid-revoked-later' })
    expect((await outcome(replayed.auth, token)) as Claims).toHaveProperty('sub')
    expect(await outcome(replayed.auth, token)).toEqual({
      code: 'token_replayed',
      description: 'mandate was already used',
    })
    const revoking = verifier({ workers: 1 })
    revoking.revocations.markRevoked('sid-x')
    expect(await outcome(revoking.auth, mint({ sid: 'sid-x' }))).toEqual({
      code: 'session_revoked',
      description: 'session has been revoked',
    })
  })

  it('many tokens at once: each gets its own answer', async () => {
    const batch = Array.from({ length: 600 }, (_, i) => (i % 7 === 0 ? mint({ aud: 'resource://other' }) : mint()))
    const answers = await Promise.all(batch.map((t) => outcome(pooled.auth, t)))
    answers.forEach((a, i) => {
      if (i % 7 === 0) expect(a).toEqual({ code: 'invalid_token', description: 'audience mismatch' })
      else expect((a as Claims).jti).toBe(JSON.parse(Buffer.from(batch[i]!.split('.')[1]!, 'base64url').toString()).jti)
    })
  })
})

describe('the main thread’s share', () => {
  it('while the worker holds all it may, the main thread verifies the rest: the same answers', async () => {
    const plain = verifier()
    const v = verifier({ workers: 1 })
    const pool = poolOf(v.auth)
    await v.auth.verify(mint())
    const here = pool.internals.tokensHere()
    // The worker blocks on its next message: the first batches wait in it, the rest is the main thread's.
    pool.internals.hang(0)
    const answered = pool.internals.tokensAnswered()
    const batch = Array.from({ length: 400 }, (_, i) =>
      i % 5 === 0 ? mint({ aud: 'resource://other' }) : i % 5 === 1 ? mint({ scope: 'a b', hop_count: 2 }) : mint(),
    )
    let settled = 0
    const answers = batch.map((t) =>
      outcome(v.auth, t).then((a) => {
        settled++
        return a
      }),
    )
    await until(() => settled > 0)
    expect(pool.internals.tokensHere()).toBeGreaterThan(here)
    // Every one the main thread verified is settled while the worker is still blocked.
    expect(settled).toBe(pool.internals.tokensHere() - here)
    pool.internals.crash(0)
    const got = await Promise.all(answers)
    for (let i = 0; i < batch.length; i++) expect(got[i]).toEqual(await outcome(plain.auth, batch[i]!))
    expect(pool.internals.tokensAnswered() - answered + pool.internals.tokensHere() - here).toBe(batch.length)
  })
})

describe('keys', () => {
  it('a token whose key left the JWKS while it waited for a worker gets the main thread’s answer now', async () => {
    const old = generateSigningKey('ES256', 'rotating-old')
    const next = generateSigningKey('ES256', 'rotating-new')
    const sts = await startJwksServer({ keys: [old.publicJwk] })
    try {
      const options = { issuer: sts.issuer, jwks: { url: sts.jwksUrl, cooldownMs: 60_000 } }
      const pooled = verifier({ ...options, workers: 1, now: Date.now })
      const plain = verifier({ ...options, now: Date.now })
      await pooled.auth.warmup()
      await plain.auth.warmup()
      const claims = { iss: sts.issuer, iat: Math.floor(Date.now() / 1000), exp: Math.floor(Date.now() / 1000) + 600 }
      const token = mint(claims, old)
      const pool = poolOf(pooled.auth)
      // The worker holds the batch; meanwhile the key is rotated out on the main thread.
      pool.internals.timeoutMs = 300
      pool.internals.hang(0)
      const waiting = outcome(pooled.auth, token)
      sts.keys = { keys: [next.publicJwk] }
      await pooled.auth.warmup()
      await plain.auth.warmup()
      const want = await outcome(plain.auth, token)
      expect(want).toEqual({ code: 'invalid_token', description: 'no usable key: unknown kid' })
      expect(await waiting).toEqual(want)
      // The new key reaches the replacement worker, which verifies with it (until it is up, the
      // main thread verifies what no worker can take).
      await until(() => pool.internals.threadIds().length === 1)
      const fresh = mint(claims, next)
      const answered = pool.internals.tokensAnswered()
      expect((await outcome(pooled.auth, fresh)) as Claims).toHaveProperty('sub')
      expect(pool.internals.tokensAnswered()).toBe(answered + 1)
    } finally {
      await sts.close()
    }
  })
  it('a key two key sets hold is imported once; when one set drops it, that set’s tokens get its answer, the other’s the worker’s', async () => {
    const old = generateSigningKey('ES256', 'shared-old')
    const next = generateSigningKey('ES256', 'shared-new')
    const sts = await startJwksServer({ keys: [old.publicJwk] })
    try {
      const owner = verifier({
        issuer: sts.issuer,
        jwks: { keys: { keys: [old.publicJwk] } },
        workers: 1,
        now: Date.now,
      })
      const pool = poolOf(owner.auth)
      const jwks = { url: sts.jwksUrl, cooldownMs: 60_000 }
      const rotating = sharingPool(pool, () => verifier({ issuer: sts.issuer, jwks, workers: 1, now: Date.now }))
      await rotating.auth.warmup()
      expect(pool.internals.workerKeys()).toBe(1)
      const claims = { iss: sts.issuer, iat: Math.floor(Date.now() / 1000), exp: Math.floor(Date.now() / 1000) + 600 }
      const answered = pool.internals.tokensAnswered()
      expect((await outcome(owner.auth, mint(claims, old))) as Claims).toHaveProperty('sub')
      expect((await outcome(rotating.auth, mint(claims, old))) as Claims).toHaveProperty('sub')
      expect(pool.internals.tokensAnswered()).toBe(answered + 2)
      // A token of the rotating set waits in the worker while that set drops the key.
      pool.internals.timeoutMs = 300
      pool.internals.hang(0)
      const waiting = outcome(rotating.auth, mint(claims, old))
      sts.keys = { keys: [next.publicJwk] }
      await rotating.auth.warmup()
      expect(pool.internals.workerKeys()).toBe(2)
      const unknown = { code: 'invalid_token', description: 'no usable key: unknown kid' }
      expect(await waiting).toEqual(unknown)
      await until(() => pool.internals.threadIds().length === 1)
      const before = pool.internals.tokensAnswered()
      expect((await outcome(owner.auth, mint(claims, old))) as Claims).toHaveProperty('sub')
      expect(await outcome(rotating.auth, mint(claims, old))).toEqual(unknown)
      expect((await outcome(rotating.auth, mint(claims, next))) as Claims).toHaveProperty('sub')
      expect(pool.internals.tokensAnswered()).toBe(before + 2)
    } finally {
      await sts.close()
    }
  })
})

describe('failures', () => {
  it('a crashed worker is replaced and its tokens are verified once more', async () => {
    const v = verifier({ workers: 1 })
    const pool = poolOf(v.auth)
    await v.auth.verify(mint())
    const [first] = pool.internals.threadIds()
    const tokens = Array.from({ length: 50 }, () => mint())
    const pending = Promise.all(tokens.map((t) => v.auth.verify(t)))
    await Promise.resolve()
    pool.internals.crash(0)
    expect((await pending).map((c) => c.sub)).toHaveLength(50)
    expect(pool.internals.threadIds()).toHaveLength(1)
    expect(pool.internals.threadIds()[0]).not.toBe(first)
  })

  it('a hung worker is ended after the time bound, and another worker answers', async () => {
    const v = verifier({ workers: 2 })
    const pool = poolOf(v.auth)
    await Promise.all([mint(), mint(), mint()].map((t) => v.auth.verify(t)))
    pool.internals.timeoutMs = 300
    pool.internals.hang(0)
    pool.internals.hang(1)
    const started = Date.now()
    const claims = await v.auth.verify(mint())
    expect(claims.sub).toMatch(/\S/)
    expect(Date.now() - started).toBeGreaterThanOrEqual(290)
  })

  it('a token whose second worker fails too is refused as unavailable, not left waiting', async () => {
    const v = verifier({ workers: 1 })
    const pool = poolOf(v.auth)
    await v.auth.verify(mint())
    pool.internals.timeoutMs = 300
    pool.internals.hang(0)
    const [hung] = pool.internals.threadIds()
    const refused = rejection(v.auth.verify(mint()))
    // The replacement starts with the token sent again: it is ended before it can answer.
    await until(() => pool.internals.threadIds()[0] !== hung)
    pool.internals.crash(0)
    const e = await refused
    expect(e.code).toBe('invalid_token')
    expect(e.description).toBe('the verification worker failed')
    expect(e.unavailable).toBe(true)
    // …and the pool recovers.
    await until(() => pool.internals.threadIds().length === 1)
    expect((await v.auth.verify(mint())).sub).toMatch(/\S/)
  })
})

describe('close', () => {
  it('ends the workers; what waited and what comes later is refused', async () => {
    const v = testVerifier('auto', { workers: 2 })
    const pool = poolOf(v.auth)
    await v.auth.verify(mint())
    const waiting = rejection(v.auth.verify(mint()))
    await v.auth.close()
    expect(await waiting).toMatchObject({ code: 'invalid_token', description: 'verifier is closed' })
    expect(pool.internals.threadIds()).toEqual([])
    expect(await rejection(v.auth.verify(mint()))).toMatchObject({
      code: 'invalid_token',
      description: 'verifier is closed',
    })
  })

  it('a process that never closes its pooled verifier still exits', () => {
    // The built package (package.json `imports` select dist's pool, README "Runtimes"), from a
    // file: workers inherit execArgv, and a file worker refuses an inherited --input-type.
    const root = new URL('..', import.meta.url)
    const script = `
      import { CaracalAuth, InMemoryRevocationStore } from ${JSON.stringify(new URL('dist/src/index.js', root).href)}
      import { mint, staticJwks } from ${JSON.stringify(new URL('test/support/mandates.ts', root).href)}
      const auth = new CaracalAuth({ issuer: ${JSON.stringify(ISSUER)}, audience: ${JSON.stringify(AUDIENCE)},
        revocations: new InMemoryRevocationStore(), jwks: { keys: staticJwks }, workers: 2, now: () => ${NOW_MS} })
      const claims = await auth.verify(mint())
      console.log('verified', claims.use)
    `
    const dir = mkdtempSync(join(tmpdir(), 'caracal-pool-exit-'))
    const file = join(dir, 'probe.mts')
    writeFileSync(file, script)
    const run = spawnSync(process.execPath, ['--import', 'tsx', file], { encoding: 'utf8', timeout: 60_000 })
    rmSync(dir, { recursive: true, force: true })
    expect(run.stderr).toBe('')
    expect(run.stdout.trim()).toBe('verified resource')
    expect(run.status).toBe(0)
  })
})

/**
 * Cold tokens gathered per turn of the event loop (README "Cold tokens under load", src/cold-batch.ts):
 * a caller awaiting one token at a time keeps its answers at once, concurrent cold tokens are
 * checked back to back at the turn's end, and either way every token gets the answer it would
 * get alone.
 */
import { setImmediate as nextTurn } from 'node:timers/promises'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { ColdBatch, LONELY_TURNS, PER_TURN, PROBE_EVERY } from '../src/cold-batch.js'
import { TEST_BACKENDS } from './support/backends.js'
import { NOW_SEC, mint, rsKey } from './support/mandates.js'
import { rejection, testVerifier } from './support/verifiers.js'

afterEach(() => {
  vi.useRealTimers()
})

describe('ColdBatch', () => {
  it('is off at first: work runs at once, but for one probe in PROBE_EVERY, which waits for the turn', async () => {
    const batch = new ColdBatch()
    const answers: unknown[] = []
    for (let i = 1; i < PROBE_EVERY; i++) answers.push(batch.run(() => i))
    expect(answers).toEqual(Array.from({ length: PROBE_EVERY - 1 }, (_, i) => i + 1))
    const probe = batch.run(() => 'probe')
    expect(probe).toBeInstanceOf(Promise)
    await expect(probe).resolves.toBe('probe')
    // Alone in its turn: still off.
    expect(batch.stats).toEqual({ gathering: false, turns: 0, tokens: 0 })
    expect(batch.run(() => 'next')).toBe('next')
  })

  it('turns on when others join a probe in its turn, and off after LONELY_TURNS turns of one token', async () => {
    const batch = new ColdBatch()
    for (let i = 1; i < PROBE_EVERY; i++) batch.run(() => i)
    const ran: number[] = []
    const joined = Array.from({ length: 5 }, (_, i) => batch.run(() => ran.push(i)))
    expect(ran).toEqual([]) // all five wait for the turn
    await Promise.all(joined)
    expect(ran).toEqual([0, 1, 2, 3, 4])
    expect(batch.stats).toEqual({ gathering: true, turns: 1, tokens: 5 })
    // On: a caller awaiting one at a time waits one turn each, until LONELY_TURNS of them switch it off.
    for (let i = 0; i < LONELY_TURNS; i++) {
      const one = batch.run(() => i)
      expect(one).toBeInstanceOf(Promise)
      await one
    }
    expect(batch.stats.gathering).toBe(false)
    expect(batch.run(() => 'at once')).toBe('at once')
  })

  it(`checks at most PER_TURN (${PER_TURN}) per turn: the first answers of a burst go out before the rest is checked`, async () => {
    const batch = new ColdBatch()
    for (let i = 1; i < PROBE_EVERY; i++) batch.run(() => i)
    let ran = 0
    const all = Array.from({ length: PER_TURN * 2 + 5 }, () => batch.run(() => ++ran))
    await nextTurn()
    expect(ran).toBe(PER_TURN)
    await nextTurn()
    expect(ran).toBe(PER_TURN * 2)
    await Promise.all(all)
    expect(ran).toBe(PER_TURN * 2 + 5)
  })

  it('a work that throws rejects its own promise only', async () => {
    const batch = new ColdBatch()
    for (let i = 1; i < PROBE_EVERY; i++) batch.run(() => i)
    const bad = batch.run(() => {
      throw new Error('refused')
    })
    const good = batch.run(() => 'fine')
    await expect(bad).rejects.toThrow('refused')
    await expect(good).resolves.toBe('fine')
  })

  it('timers faked before the library loaded do not hold a waiting token either', async () => {
    vi.useFakeTimers()
    vi.resetModules()
    const fresh = await import('../src/cold-batch.js')
    const batch = new fresh.ColdBatch()
    for (let i = 1; i < PROBE_EVERY; i++) batch.run(() => i)
    const waiting = batch.run(() => 'done')
    expect(waiting).toBeInstanceOf(Promise)
    await expect(waiting).resolves.toBe('done') // no vi.advanceTimers: the real end of the turn
  })

  it('timers faked after the library loaded do not hold a waiting token', async () => {
    const batch = new ColdBatch()
    for (let i = 1; i < PROBE_EVERY; i++) batch.run(() => i)
    vi.useFakeTimers()
    const waiting = batch.run(() => 'done')
    vi.useRealTimers()
    await expect(waiting).resolves.toBe('done')
  })
})

describe.each(TEST_BACKENDS)('cold tokens gathered per turn, on %s', (backend) => {
  it('concurrent cold tokens: each gets its own answer, valid or not, and the gathering turns on', async () => {
    const { auth } = testVerifier(backend, { cache: false })
    const tokens = Array.from({ length: PROBE_EVERY + 40 }, (_, i) => {
      if (i % 7 === 3) return mint({ exp: NOW_SEC - 3600 }) // expired
      if (i % 7 === 5) {
        const t = mint({ sub: `user-${i}` })
        return `${t.slice(0, -4)}${t.endsWith('AAAA') ? 'BBBB' : 'AAAA'}` // tampered signature
      }
      return mint({ sub: `user-${i}` }, i % 2 === 0 ? undefined : rsKey)
    })
    const answers = await Promise.allSettled(tokens.map((t) => auth.verify(t)))
    answers.forEach((a, i) => {
      if (i % 7 === 3)
        expect(a).toMatchObject({ status: 'rejected', reason: { code: 'invalid_token', description: 'token expired' } })
      else if (i % 7 === 5)
        expect(a).toMatchObject({
          status: 'rejected',
          reason: { code: 'invalid_token', description: 'signature verification failed' },
        })
      else expect(a).toMatchObject({ status: 'fulfilled', value: { sub: `user-${i}` } })
    })
    // The first PROBE_EVERY - 1 at once; the probe and the 40 after it in two turns (PER_TURN, then 9).
    expect(auth.stats().coldBatches).toEqual({ gathering: true, turns: 2, tokens: 41 })
    await auth.close()
  })

  it('the same cold token twice in one turn: one check, and both get its one claims object (a hit)', async () => {
    const { auth } = testVerifier(backend)
    for (let i = 1; i < PROBE_EVERY; i++) await auth.verify(mint())
    const token = mint({ sub: 'twice' })
    const [a, b] = await Promise.all([auth.verify(token), auth.verify(token)])
    expect(a).toMatchObject({ sub: 'twice' })
    expect(b).toBe(a)
    // Each call counted once: both came in as misses; the second found the first's entry.
    expect(auth.stats().cache).toMatchObject({ hits: 0, misses: PROBE_EVERY + 1, size: PROBE_EVERY })
    await auth.close()
  })

  it('a token that expires while it waits for the turn is refused as expired: the clock is read when it is checked', async () => {
    const { auth, clock } = testVerifier(backend, { cache: false })
    for (let i = 1; i < PROBE_EVERY; i++) await auth.verify(mint())
    const short = mint({ exp: NOW_SEC + 1 })
    const waiting = [auth.verify(mint()), auth.verify(short)]
    clock.advance(5_000)
    await expect(waiting[0]).resolves.toBeDefined()
    const e = await rejection(waiting[1]!)
    expect(e.code).toBe('invalid_token')
    expect(e.description).toBe('token expired')
    await auth.close()
  })

  it('a verifier closed while its tokens wait for the turn refuses them as closed', async () => {
    const { auth } = testVerifier(backend, { cache: false })
    for (let i = 1; i < PROBE_EVERY; i++) await auth.verify(mint())
    const waiting = [auth.verify(mint()), auth.verify(mint())]
    await auth.close()
    for (const w of waiting) {
      const e = await rejection(w)
      expect(e.code).toBe('invalid_token')
      expect(e.description).toBe('verifier is closed')
    }
  })
})

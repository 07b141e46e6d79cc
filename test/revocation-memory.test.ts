/** InMemoryRevocationStore (docs/architecture.md "Revocation"): TTL per entry, bounded size, synchronous answers. */
import { afterEach, describe, expect, it, vi } from 'vitest'
import fc from 'fast-check'
import { InMemoryRevocationStore, RevocationStoreFullError } from '../src/index.js'
import { TEST_BACKENDS } from './support/backends.js'
import { mint } from './support/mandates.js'
import { testClock } from './support/test-clock.js'
import { rejection, testVerifier } from './support/verifiers.js'

const DAY = 24 * 60 * 60 * 1000

afterEach(() => {
  vi.restoreAllMocks()
})

describe('InMemoryRevocationStore', () => {
  it('answers synchronously with a boolean', () => {
    const store = new InMemoryRevocationStore()
    store.markRevoked('a')
    expect(store.isRevoked('a')).toBe(true)
    expect(store.isRevoked('b')).toBe(false)
  })

  it('an entry lives for the default TTL (24 h), then is forgotten', () => {
    const clock = testClock()
    const store = new InMemoryRevocationStore({ now: clock.now })
    store.markRevoked('a')
    clock.advance(DAY - 1)
    expect(store.isRevoked('a')).toBe(true)
    clock.advance(1)
    expect(store.isRevoked('a')).toBe(false)
    expect(store.size).toBe(0)
  })

  it('honours a TTL per entry and a custom default', () => {
    const clock = testClock()
    const store = new InMemoryRevocationStore({ now: clock.now, defaultTtlMs: 1000 })
    store.markRevoked('short')
    store.markRevoked('long', 5000)
    clock.advance(1000)
    expect(store.isRevoked('short')).toBe(false)
    expect(store.isRevoked('long')).toBe(true)
    clock.advance(4000)
    expect(store.isRevoked('long')).toBe(false)
  })

  it('a revocation never gets shorter; a longer one extends it', () => {
    const clock = testClock()
    const store = new InMemoryRevocationStore({ now: clock.now })
    store.markRevoked('a', 10_000)
    store.markRevoked('a', 1_000)
    clock.advance(5_000)
    expect(store.isRevoked('a')).toBe(true)
    store.markRevoked('a', 20_000)
    clock.advance(15_000)
    expect(store.isRevoked('a')).toBe(true)
    clock.advance(5_000)
    expect(store.isRevoked('a')).toBe(false)
  })

  it('is bounded: expired entries make room; full of live ones, a new revocation is refused and none is dropped', () => {
    const warn = vi.spyOn(process, 'emitWarning').mockImplementation(() => {})
    const clock = testClock()
    const store = new InMemoryRevocationStore({ now: clock.now, maxEntries: 3 })
    store.markRevoked('expiring', 100)
    store.markRevoked('b')
    store.markRevoked('c')
    clock.advance(100)
    store.markRevoked('d') // 'expiring' has expired: it makes room, nothing live is lost
    expect(store.size).toBe(3)
    expect(warn).not.toHaveBeenCalled()
    expect(['b', 'c', 'd'].map((a) => store.isRevoked(a))).toEqual([true, true, true])
    expect(() => store.markRevoked('e')).toThrow(RevocationStoreFullError)
    expect(() => store.markRevoked('f')).toThrow(
      'InMemoryRevocationStore is full: 3 unexpired revocations (maxEntries); the revocation was not recorded',
    )
    expect(store.hasRoom()).toBe(false)
    expect(['b', 'c', 'd', 'e'].map((a) => store.isRevoked(a))).toEqual([true, true, true, false])
    // An anchor already held may still be extended when full: that needs no room.
    store.markRevoked('b', 48 * 3600_000)
    expect(warn).toHaveBeenCalledTimes(1)
    expect(warn.mock.calls[0]![1]).toMatchObject({ code: 'CARACAL_REVOCATIONS_FULL' })
    clock.advance(24 * 3600_000) // c and d expire; b was extended
    expect(store.hasRoom()).toBe(true)
    store.markRevoked('e')
    expect(['b', 'c', 'd', 'e'].map((a) => store.isRevoked(a))).toEqual([true, false, false, true])
    warn.mockRestore()
  })

  it('agrees with a plain model under random marks, extensions, deletes and clock steps, and never drops a live entry', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            fc.record({
              op: fc.constant('mark' as const),
              a: fc.integer({ min: 0, max: 12 }),
              ttl: fc.integer({ min: 1, max: 50 }),
            }),
            fc.record({ op: fc.constant('advance' as const), ms: fc.integer({ min: 0, max: 30 }) }),
            fc.record({ op: fc.constant('delete' as const), a: fc.integer({ min: 0, max: 12 }) }),
          ),
          { maxLength: 200 },
        ),
        fc.integer({ min: 1, max: 8 }),
        (ops, maxEntries) => {
          const clock = testClock()
          const store = new InMemoryRevocationStore({ now: clock.now, maxEntries })
          const model = new Map<string, number>()
          const live = () => [...model].filter(([, e]) => e > clock.now()).length
          for (const step of ops) {
            if (step.op === 'advance') clock.advance(step.ms)
            else if (step.op === 'delete') {
              store.delete(`a${step.a}`)
              model.delete(`a${step.a}`)
            } else {
              const anchor = `a${step.a}`
              const expiry = clock.now() + step.ttl
              const held = model.get(anchor)
              const isLive = held !== undefined && held > clock.now()
              const mustRefuse = !isLive && live() >= maxEntries
              let refused = false
              try {
                store.markRevoked(anchor, step.ttl)
              } catch (e) {
                expect(e).toBeInstanceOf(RevocationStoreFullError)
                refused = true
              }
              expect(refused).toBe(mustRefuse)
              if (!refused) model.set(anchor, isLive ? Math.max(held, expiry) : expiry)
            }
            for (let a = 0; a <= 12; a++) {
              const e = model.get(`a${a}`)
              expect(store.isRevoked(`a${a}`), `a${a}`).toBe(e !== undefined && e > clock.now())
            }
          }
        },
      ),
      { numRuns: 300 },
    )
  })

  it('re-marking an anchor does not evict another one', () => {
    const store = new InMemoryRevocationStore({ maxEntries: 2 })
    store.markRevoked('a', 1000)
    store.markRevoked('b', 1000)
    store.markRevoked('a', 2000)
    expect(store.isRevoked('a')).toBe(true)
    expect(store.isRevoked('b')).toBe(true)
  })

  it('delete() and clear() forget revocations', () => {
    const store = new InMemoryRevocationStore()
    store.markRevoked('a')
    store.markRevoked('b')
    expect(store.delete('a')).toBe(true)
    expect(store.isRevoked('a')).toBe(false)
    store.clear()
    expect(store.size).toBe(0)
  })

  const ttlMessage = 'InMemoryRevocationStore option "defaultTtlMs" must be a positive number of milliseconds'
  it.each([
    ['defaultTtlMs 0', { defaultTtlMs: 0 }, ttlMessage],
    ['defaultTtlMs -1', { defaultTtlMs: -1 }, ttlMessage],
    ['defaultTtlMs NaN', { defaultTtlMs: Number.NaN }, ttlMessage],
    ['defaultTtlMs Infinity', { defaultTtlMs: Number.POSITIVE_INFINITY }, ttlMessage],
    ['defaultTtlMs "1000"', { defaultTtlMs: '1000' }, ttlMessage],
    ['maxEntries 0', { maxEntries: 0 }, 'InMemoryRevocationStore option "maxEntries" must be an integer ≥ 1'],
    ['maxEntries 1.5', { maxEntries: 1.5 }, 'InMemoryRevocationStore option "maxEntries" must be an integer ≥ 1'],
    ['now not a function', { now: 5 }, 'InMemoryRevocationStore option "now" must be a function'],
    [
      'an unknown option',
      { ttlMs: 1000 },
      'InMemoryRevocationStore option "ttlMs" is not an option of InMemoryRevocationStore',
    ],
    ['options null', null, 'InMemoryRevocationStore needs an options object'],
  ])('rejects %s with a TypeError naming it', (_name, options, message) => {
    expect(() => new InMemoryRevocationStore(options as never)).toThrow(new TypeError(message))
  })

  it('options set to undefined take their defaults', () => {
    const store = new InMemoryRevocationStore({ defaultTtlMs: undefined, maxEntries: undefined, now: undefined })
    store.markRevoked('a')
    expect(store.isRevoked('a')).toBe(true)
  })

  it.each([
    ['an empty anchor', '', undefined],
    ['a non-string anchor', 5, undefined],
    ['ttlMs 0', 'a', 0],
    ['ttlMs negative', 'a', -1],
    ['ttlMs NaN', 'a', Number.NaN],
  ])('markRevoked refuses %s', (_name, anchor, ttl) => {
    const store = new InMemoryRevocationStore()
    expect(() => store.markRevoked(anchor as string, ttl)).toThrow(TypeError)
    expect(store.size).toBe(0)
  })
})

describe.each(TEST_BACKENDS)('InMemoryRevocationStore in CaracalAuth on %s', (backend) => {
  it('a revocation that expires lets the session through again', async () => {
    const { auth, revocations, clock } = testVerifier(backend)
    const token = mint({ sid: 'sid-ttl' })
    revocations.markRevoked('sid-ttl', 30_000)
    expect((await rejection(auth.verify(token))).code).toBe('session_revoked')
    clock.advance(30_000)
    await expect(auth.verify(token)).resolves.toMatchObject({ authorityRecordId: 'sid-ttl' })
  })

  it('revoking one session does not touch another with a different anchor set', async () => {
    const { auth, revocations } = testVerifier(backend)
    const a = mint({ sid: 'sid-a', root_sid: 'root-a' })
    const b = mint({ sid: 'sid-b', root_sid: 'root-b' })
    revocations.markRevoked('root-a')
    expect((await rejection(auth.verify(a))).code).toBe('session_revoked')
    await expect(auth.verify(b)).resolves.toBeDefined()
  })
})

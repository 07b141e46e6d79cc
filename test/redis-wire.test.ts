import { createHmac } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import {
  checkDelegationEvent,
  checkRevocationEvent,
  compareStreamIds,
  delegationEpochEventFields,
  delegationEpochKey,
  parseEpoch,
  parseStreamEntry,
  parseStreamsReply,
  pxTtl,
  revocationEventFields,
  scanPatternFor,
  signRevocationEvent,
  verifyRevocationSignature,
} from '../src/revocation/redis-wire.js'
import { caracalSignature } from './support/caracal-coordinator.js'

const STREAM = 'caracal.sessions.revoke'
const KEY = Buffer.from('stream-secret')

function signed(fields: Record<string, string>): Record<string, string> {
  return { ...fields, _sig: signRevocationEvent(KEY, STREAM, fields) }
}

describe('revocation wire format', () => {
  it('signs "<stream>\\n" then "<key>=<value>\\n" per field, keys ascending, _sig excluded', () => {
    const fields = { zone_id: 'z1', session_id: 's1', reason: 'logout', _sig: 'ignored' }
    const canonical = 'caracal.sessions.revoke\nreason=logout\nsession_id=s1\nzone_id=z1\n'
    const expected = createHmac('sha256', KEY).update(canonical).digest('hex')
    expect(signRevocationEvent(KEY, STREAM, fields)).toBe(expected)
    // The stream name is part of what is signed: an event cannot be replayed onto another stream.
    expect(signRevocationEvent(KEY, 'other', fields)).not.toBe(expected)
  })

  it('verifies a good signature and refuses tampering, a wrong key, a missing or malformed _sig', () => {
    const event = signed({ zone_id: 'z1', session_id: 's1', reason: 'r' })
    expect(verifyRevocationSignature(KEY, STREAM, event)).toBe(true)
    expect(verifyRevocationSignature(KEY, STREAM, { ...event, session_id: 's2' })).toBe(false)
    expect(verifyRevocationSignature(KEY, STREAM, { ...event, sid: 'added' })).toBe(false)
    expect(verifyRevocationSignature(Buffer.from('other'), STREAM, event)).toBe(false)
    const { _sig: sig, ...unsigned } = event
    expect(verifyRevocationSignature(KEY, STREAM, unsigned)).toBe(false)
    expect(verifyRevocationSignature(KEY, STREAM, { ...unsigned, _sig: sig!.slice(0, 62) })).toBe(false)
    expect(verifyRevocationSignature(KEY, STREAM, { ...unsigned, _sig: `${sig!.slice(0, 63)}g` })).toBe(false)
    expect(verifyRevocationSignature(KEY, STREAM, { ...unsigned, _sig: sig!.toUpperCase() })).toBe(true)
  })

  it('applies the consumer checks in order: signature (required with a key), then an anchor', () => {
    expect(checkRevocationEvent({ zone_id: 'z', session_id: 's', reason: 'r' }, STREAM, KEY)).toEqual({
      ok: false,
      reason: 'invalid_signature',
    })
    expect(checkRevocationEvent(signed({ zone_id: 'z', reason: 'r' }), STREAM, KEY)).toEqual({
      ok: false,
      reason: 'missing_revocation_anchor',
    })
    expect(checkRevocationEvent(signed({ zone_id: 'z', session_id: '', reason: 'r' }), STREAM, KEY)).toEqual({
      ok: false,
      reason: 'missing_revocation_anchor',
    })
    expect(checkRevocationEvent(undefined, STREAM, KEY)).toEqual({ ok: false, reason: 'malformed_event' })
    const ok = checkRevocationEvent(
      signed({
        zone_id: 'z',
        reason: 'r',
        session_id: 'a',
        sid: 'a',
        root_sid: 'b',
        agent_session_id: 'c',
        delegation_edge_id: 'd',
      }),
      STREAM,
      KEY,
    )
    expect(ok).toEqual({ ok: true, anchors: ['a', 'b', 'c', 'd'], ttlMs: undefined })
    // Without a key, unsigned events are accepted (the backend's behaviour).
    expect(checkRevocationEvent({ zone_id: 'z', sid: 'x', reason: 'r' }, STREAM, undefined)).toMatchObject({
      ok: true,
      anchors: ['x'],
    })
  })

  it('refuses an event naming an anchor that would be a zone epoch key (delegation-epoch:…) as invalid_anchor, after the signature', () => {
    for (const fields of [
      { zone_id: 'z', session_id: 'delegation-epoch:zone-1', reason: 'r' } as Record<string, string>,
      { zone_id: 'z', session_id: 'fine', agent_session_id: 'delegation-epoch:', reason: 'r' },
    ]) {
      expect(checkRevocationEvent(signed(fields), STREAM, KEY)).toEqual({ ok: false, reason: 'invalid_anchor' })
      expect(checkRevocationEvent(fields, STREAM, undefined)).toEqual({ ok: false, reason: 'invalid_anchor' })
      expect(checkRevocationEvent(fields, STREAM, KEY)).toEqual({ ok: false, reason: 'invalid_signature' })
    }
    // Only the prefix is reserved.
    expect(checkRevocationEvent({ session_id: 'x-delegation-epoch:zone-1' }, STREAM, undefined)).toMatchObject({
      ok: true,
    })
  })

  it('never signs, accepts or writes fields the canonical form cannot tell apart ("=" or a newline in a name, a newline in a value)', () => {
    // Both spell "reason=r\nsession_id=victim\n" once canonical: one HMAC would vouch for both events.
    const smuggled = { reason: 'r\nsession_id=victim' }
    const honest = { reason: 'r', session_id: 'victim' }
    const mac = (f: Record<string, string>) => {
      const h = createHmac('sha256', KEY).update(`${STREAM}\n`)
      for (const k of Object.keys(f).sort()) h.update(`${k}=${f[k]}\n`)
      return h.digest('hex')
    }
    expect(mac(smuggled)).toBe(mac(honest))
    expect(() => signRevocationEvent(KEY, STREAM, smuggled)).toThrow(
      new TypeError('cannot sign the event: field "reason" contains a newline'),
    )
    expect(() => signRevocationEvent(KEY, STREAM, { 'a=b': 'c', session_id: 's' })).toThrow(
      new TypeError('cannot sign the event: field name "a=b" contains "=" or a newline'),
    )
    const forged = { ...smuggled, _sig: mac(smuggled) }
    expect(verifyRevocationSignature(KEY, STREAM, forged)).toBe(false)
    expect(checkRevocationEvent(forged, STREAM, KEY)).toEqual({ ok: false, reason: 'malformed_event' })
    // Without a key too: an unsigned event of that shape is refused, not read as one anchor or two.
    expect(checkRevocationEvent({ session_id: 'a\nb' }, STREAM, undefined)).toEqual({
      ok: false,
      reason: 'malformed_event',
    })
    expect(checkDelegationEvent({ zone_id: 'z\n', epoch: '3' }, STREAM, undefined)).toEqual({
      ok: false,
      reason: 'malformed_event',
    })
    // The honest event still verifies: only the ambiguous spelling is refused.
    expect(checkRevocationEvent(signed(honest), STREAM, KEY)).toMatchObject({ ok: true, anchors: ['victim'] })
    expect(() => revocationEventFields({ zoneId: 'z', anchor: 'a\nb', reason: 'r' }, STREAM, undefined)).toThrow(
      'cannot write the event: field "session_id" contains a newline',
    )
  })

  it('reads ttl_ms (on the peer stream only) when it is a positive integer and falls back to the default otherwise', () => {
    const ttl = (value: string) => {
      const check = checkRevocationEvent({ session_id: 's', ttl_ms: value }, STREAM, undefined, true)
      return check.ok ? check.ttlMs : 'refused'
    }
    expect(ttl('60000')).toBe(60_000)
    expect(ttl('0')).toBeUndefined()
    expect(ttl('-5')).toBeUndefined()
    expect(ttl('1e9')).toBeUndefined()
    expect(ttl('99999999999999999')).toBeUndefined()
  })

  it("never reads ttl_ms on Caracal's streams (the default applies): an event cannot make its key near-eternal", () => {
    expect(checkRevocationEvent({ session_id: 's', ttl_ms: '9000000000000000' }, STREAM, undefined)).toEqual({
      ok: true,
      anchors: ['s'],
      ttlMs: undefined,
    })
    const epoch = { zone_id: 'z', epoch: String(Number.MAX_SAFE_INTEGER), ttl_ms: '9000000000000000' }
    expect(checkDelegationEvent(epoch, 'caracal.delegations.invalidate', undefined)).toEqual({
      ok: true,
      zoneId: 'z',
      epoch: Number.MAX_SAFE_INTEGER,
      ttlMs: undefined,
    })
    expect(checkDelegationEvent(epoch, 'caracal-fastmcp.revocations', undefined, true)).toMatchObject({
      ttlMs: 9_000_000_000_000_000,
    })
  })

  it('builds peer events its mirrors accept: required fields, ttl_ms rounded up, a valid _sig', () => {
    const peer = 'caracal-fastmcp.revocations'
    const flat = revocationEventFields({ zoneId: 'z', anchor: 'sess-1', reason: 'logout', ttlMs: 1500.2 }, peer, KEY)
    const fields = Object.fromEntries(
      Array.from({ length: flat.length / 2 }, (_, i) => [flat[2 * i]!, flat[2 * i + 1]!]),
    )
    expect(fields).toMatchObject({
      event: 'session_revoke',
      zone_id: 'z',
      session_id: 'sess-1',
      reason: 'logout',
      ttl_ms: '1501',
    })
    expect(verifyRevocationSignature(KEY, peer, fields)).toBe(true)
    expect(checkRevocationEvent(fields, peer, KEY, true)).toEqual({ ok: true, anchors: ['sess-1'], ttlMs: 1501 })
    const epochFlat = delegationEpochEventFields({ zoneId: 'z', epoch: 12, ttlMs: 999.5 }, peer, KEY)
    const epochFields = Object.fromEntries(
      Array.from({ length: epochFlat.length / 2 }, (_, i) => [epochFlat[2 * i]!, epochFlat[2 * i + 1]!]),
    )
    expect(epochFields).toMatchObject({ event: 'delegation_epoch', zone_id: 'z', epoch: '12', ttl_ms: '1000' })
    expect(checkDelegationEvent(epochFields, peer, KEY, true)).toEqual({
      ok: true,
      zoneId: 'z',
      epoch: 12,
      ttlMs: 1000,
    })
  })

  it('signs exactly as the canonical form Caracal publishes (an independent implementation agrees)', () => {
    const fields = {
      outbox_id: '0190-x',
      dedupe_key: 'edge_create:e1',
      event: 'edge_create',
      zone_id: 'z',
      edge_id: 'e1',
      epoch: '7',
    }
    for (const stream of [STREAM, 'caracal.delegations.invalidate']) {
      expect(signRevocationEvent(KEY, stream, fields)).toBe(caracalSignature(KEY, stream, fields))
    }
  })

  it('reads a delegation event: signature first, then a non-empty zone_id and a decimal epoch', () => {
    const DELEGATIONS = 'caracal.delegations.invalidate'
    const sign = (fields: Record<string, string>) => ({
      ...fields,
      _sig: signRevocationEvent(KEY, DELEGATIONS, fields),
    })
    const event = {
      outbox_id: 'o',
      dedupe_key: 'd',
      event: 'edge_revoke',
      zone_id: 'z',
      edge_id: 'e',
      affected_edges: '2',
      epoch: '42',
    }
    expect(checkDelegationEvent(sign(event), DELEGATIONS, KEY)).toEqual({
      ok: true,
      zoneId: 'z',
      epoch: 42,
      ttlMs: undefined,
    })
    expect(checkDelegationEvent(event, DELEGATIONS, undefined)).toMatchObject({ ok: true, epoch: 42 })
    expect(checkDelegationEvent(event, DELEGATIONS, KEY)).toEqual({ ok: false, reason: 'invalid_signature' })
    // Signed for the revocation stream: not valid on this one.
    expect(checkDelegationEvent({ ...event, _sig: signRevocationEvent(KEY, STREAM, event) }, DELEGATIONS, KEY)).toEqual(
      { ok: false, reason: 'invalid_signature' },
    )
    for (const bad of [
      { epoch: '' },
      { epoch: '-1' },
      { epoch: '1.5' },
      { epoch: '1e3' },
      { epoch: ' 1' },
      { epoch: '99999999999999999' },
      { zone_id: '' },
    ]) {
      expect(checkDelegationEvent(sign({ ...event, ...bad }), DELEGATIONS, KEY)).toEqual({
        ok: false,
        reason: 'invalid_delegation_epoch',
      })
    }
    const { epoch: _, ...noEpoch } = event
    expect(checkDelegationEvent(sign(noEpoch), DELEGATIONS, KEY)).toEqual({
      ok: false,
      reason: 'invalid_delegation_epoch',
    })
    expect(checkDelegationEvent(undefined, DELEGATIONS, KEY)).toEqual({ ok: false, reason: 'malformed_event' })
    expect([parseEpoch('0'), parseEpoch('007'), parseEpoch(null), parseEpoch('x')]).toEqual([
      0,
      7,
      undefined,
      undefined,
    ])
  })

  it('names the epoch key under the prefix, rounds PX TTLs up, and splits a multi-stream XREAD reply', () => {
    expect(delegationEpochKey('caracal:revoked:sessions:', 'zone-1')).toBe(
      'caracal:revoked:sessions:delegation-epoch:zone-1',
    )
    expect([pxTtl(1500), pxTtl(1500.01), pxTtl(0.2)]).toEqual([1500, 1501, 1])
    const byStream = parseStreamsReply([
      ['a', [['1-1', ['session_id', 'x']]]],
      ['b', [['2-1', ['zone_id', 'z', 'epoch', '3']]]],
    ])
    expect([...byStream.keys()]).toEqual(['a', 'b'])
    expect(byStream.get('b')?.[0]).toMatchObject({ id: '2-1', fields: { zone_id: 'z', epoch: '3' } })
    expect(parseStreamsReply(null).size).toBe(0)
  })

  it('treats an entry that names a field twice, or is not flat string pairs, as malformed', () => {
    expect(parseStreamEntry(['1-1', ['session_id', 'a', 'session_id', 'b']])?.fields).toBeUndefined()
    expect(parseStreamEntry(['1-1', ['session_id']])?.fields).toBeUndefined()
    expect(parseStreamEntry(['1-1', null])).toMatchObject({ deleted: true })
    expect(parseStreamEntry(['1-1', ['session_id', 'a']])).toMatchObject({
      deleted: false,
      fields: { session_id: 'a' },
    })
    expect(parseStreamEntry('junk')).toBeUndefined()
  })

  it('orders stream IDs numerically and escapes glob characters of a key prefix', () => {
    expect(compareStreamIds('10-0', '9-5')).toBe(1)
    expect(compareStreamIds('5-10', '5-9')).toBe(1)
    expect(compareStreamIds('5-1', '5-1')).toBe(0)
    expect(compareStreamIds('0-0', '18446744073709551615-0')).toBe(-1)
    expect(scanPatternFor('caracal:revoked:sessions:')).toBe('caracal:revoked:sessions:*')
    expect(scanPatternFor('a*b?[c]\\')).toBe('a\\*b\\?\\[c\\]\\\\*')
  })
})

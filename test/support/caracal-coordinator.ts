/**
 * A stand-in for Caracal's coordinator and its outbox publisher, for tests: it appends to
 * `caracal.sessions.revoke` and `caracal.delegations.invalidate` what the real one appends, in its
 * wire format — flat string fields, `outbox_id` and `dedupe_key` first, then the payload (strings
 * as they are, anything else as JSON text, so epoch 9 is "9"), `MAXLEN ~ 100000`, and `_sig` last
 * when a key is configured (unsigned otherwise, Caracal's dev mode). The signature is computed
 * here from the published canonical form, not with the library's signer, so the tests check one
 * against the other.
 */
import { createHmac, randomBytes } from 'node:crypto'
import type { Redis } from 'ioredis'

export const CARACAL_REVOKE_STREAM = 'caracal.sessions.revoke'
export const CARACAL_DELEGATION_STREAM = 'caracal.delegations.invalidate'
/** The coordinator's STREAMS_MAXLEN default. */
export const CARACAL_STREAMS_MAXLEN = 100_000

export interface CaracalCoordinatorOptions {
  /** The bytes of STREAMS_HMAC_KEY (hex-decoded). Without it, events go out unsigned. */
  readonly hmacKey?: Uint8Array
  readonly revokeStream?: string
  readonly delegationStream?: string
  readonly maxLen?: number
}

/** `signWith` signs with another key (a forgery, or a coordinator with the wrong key); `unsigned` leaves `_sig` out. */
export interface PublishOptions {
  readonly signWith?: Uint8Array
  readonly unsigned?: boolean
}

export interface Published {
  /** The stream entry ID. */
  readonly id: string
  readonly fields: Readonly<Record<string, string>>
}

/** Hex HMAC-SHA256 over "<stream>\n" and "<key>=<value>\n" for each field but `_sig`, keys in ascending order. */
export function caracalSignature(key: Uint8Array, stream: string, fields: Readonly<Record<string, string>>): string {
  const canonical = Object.keys(fields)
    .filter((k) => k !== '_sig')
    .sort()
    .map((k) => `${k}=${fields[k]}\n`)
    .join('')
  return createHmac('sha256', key).update(`${stream}\n${canonical}`).digest('hex')
}

/** A UUIDv7 (the outbox's row IDs): 48 bits of Unix milliseconds, version 7, the rest random. */
function uuidv7(): string {
  const bytes = randomBytes(16)
  bytes.writeUIntBE(Date.now(), 0, 6)
  bytes[6] = (bytes[6]! & 0x0f) | 0x70
  bytes[8] = (bytes[8]! & 0x3f) | 0x80
  const hex = bytes.toString('hex')
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`
}

export class CaracalCoordinator {
  readonly #redis: Redis
  readonly #key: Uint8Array | undefined
  readonly #maxLen: number
  /** zone → epoch, as the delegation_graph_epochs table: per zone, from 1, one more per change. */
  readonly #epochs = new Map<string, number>()
  readonly revokeStream: string
  readonly delegationStream: string

  constructor(redis: Redis, options: CaracalCoordinatorOptions = {}) {
    this.#redis = redis
    this.#key = options.hmacKey
    this.#maxLen = options.maxLen ?? CARACAL_STREAMS_MAXLEN
    this.revokeStream = options.revokeStream ?? CARACAL_REVOKE_STREAM
    this.delegationStream = options.delegationStream ?? CARACAL_DELEGATION_STREAM
  }

  /** The zone's next epoch (bumpDelegationEpoch): 1 for a zone's first change. */
  bumpEpoch(zoneId: string): number {
    const epoch = (this.#epochs.get(zoneId) ?? 0) + 1
    this.#epochs.set(zoneId, epoch)
    return epoch
  }

  /** An agent suspended (or a delegation revoked): the sessions to refuse. `options` as in `publish`. */
  revokeSession(
    event: {
      readonly zoneId: string
      readonly sessionId: string
      readonly agentSessionId?: string
      readonly delegationEdgeId?: string
      readonly reason?: string
    },
    options: PublishOptions = {},
  ): Promise<Published> {
    const payload: Record<string, unknown> = { zone_id: event.zoneId, session_id: event.sessionId }
    if (event.agentSessionId !== undefined) payload.agent_session_id = event.agentSessionId
    if (event.delegationEdgeId !== undefined) payload.delegation_edge_id = event.delegationEdgeId
    payload.reason = event.reason ?? (event.delegationEdgeId !== undefined ? 'delegation_revoked' : 'agent_suspended')
    const dedupe =
      event.delegationEdgeId !== undefined
        ? `delegation:${event.delegationEdgeId}:subject:${event.sessionId}`
        : `agent_suspend:${event.agentSessionId ?? event.sessionId}`
    return this.publish(this.revokeStream, dedupe, payload, options)
  }

  /** A delegation edge created: the zone's epoch goes up. `options` as in `publish`. */
  createEdge(
    event: {
      readonly zoneId: string
      readonly edgeId: string
      readonly sourceSessionId: string
      readonly targetSessionId: string
    },
    options: PublishOptions = {},
  ): Promise<Published> {
    return this.publish(
      this.delegationStream,
      `edge_create:${event.edgeId}`,
      {
        event: 'edge_create',
        zone_id: event.zoneId,
        edge_id: event.edgeId,
        source_session_id: event.sourceSessionId,
        target_session_id: event.targetSessionId,
        epoch: this.bumpEpoch(event.zoneId),
      },
      options,
    )
  }

  /** A delegation edge revoked (with the edges below it). */
  revokeEdge(event: {
    readonly zoneId: string
    readonly edgeId: string
    readonly affectedEdges?: number
  }): Promise<Published> {
    return this.publish(this.delegationStream, `edge_revoke:${event.edgeId}`, {
      event: 'edge_revoke',
      zone_id: event.zoneId,
      edge_id: event.edgeId,
      affected_edges: event.affectedEdges ?? 1,
      epoch: this.bumpEpoch(event.zoneId),
    })
  }

  /** Edges expired by the retention job. */
  expireEdges(event: { readonly zoneId: string; readonly edgeIds: readonly string[] }): Promise<Published> {
    const epoch = this.bumpEpoch(event.zoneId)
    return this.publish(this.delegationStream, `edge_expire:${event.zoneId}:${epoch}`, {
      event: 'edge_expire',
      zone_id: event.zoneId,
      affected_edges: event.edgeIds.length,
      edge_ids: event.edgeIds,
      epoch,
    })
  }

  /** Appends one outbox row to `topic` as the publisher does, signed unless `options` say otherwise. */
  async publish(
    topic: string,
    dedupeKey: string,
    payload: Readonly<Record<string, unknown>>,
    options: PublishOptions = {},
  ): Promise<Published> {
    const fields: Record<string, string> = { outbox_id: uuidv7(), dedupe_key: dedupeKey }
    for (const [name, value] of Object.entries(payload)) {
      if (name === 'outbox_id' || name === 'dedupe_key' || name === '_sig') continue
      fields[name] = typeof value === 'string' ? value : JSON.stringify(value)
    }
    const key = options.signWith ?? this.#key
    if (key !== undefined && options.unsigned !== true) fields._sig = caracalSignature(key, topic, fields)
    const id = await this.#redis.xadd(topic, 'MAXLEN', '~', this.#maxLen, '*', ...Object.entries(fields).flat())
    if (id === null) throw new Error(`XADD to ${topic} returned no ID`)
    return { id, fields }
  }
}

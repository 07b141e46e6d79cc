/**
 * `caracal-fastmcp/redis`: revocation and delegation epochs at gateway scale on Redis
 * (docs/architecture.md "Revocation"). `ioredis` is an optional peer dependency: this entry only
 * uses the client you pass in, and imports its types.
 */
export {
  RedisRevocationStore,
  type RedisRevocationStoreOptions,
  type RedisRevocationStoreSettings,
  type RedisRevocationStoreState,
} from './revocation/redis-store.js'
export {
  RedisDelegationInvalidationConsumer,
  RedisRevocationConsumer,
  type DeadLetterReason,
  type DelegationEpochMirror,
  type RedisDelegationInvalidationConsumerOptions,
  type RedisDelegationInvalidationConsumerSettings,
  type RedisRevocationConsumerOptions,
  type RedisRevocationConsumerSettings,
  type RedisRevocationConsumerStats,
  type RevocationMirror,
  type RunOptions,
} from './revocation/redis-consumer.js'
export {
  REPLAY_KEY_PREFIX,
  RedisReplayStore,
  type RedisReplayStoreOptions,
  type RedisReplayStoreSettings,
} from './replay/redis-replay-store.js'
export { FAIL_FAST_REDIS_OPTIONS, type RedisClient } from './revocation/redis-connection.js'
export {
  ANCHOR_FIELDS,
  DEAD_LETTER_MAX_LENGTH,
  DEFAULT_CONSUMER_GROUP,
  DEFAULT_DELEGATION_GROUP,
  DELEGATION_EPOCH_KEY_INFIX,
  DELEGATION_INVALIDATION_STREAM,
  FAIL_CLOSED_EPOCH,
  PEER_STREAM,
  PEER_STREAM_MAX_LENGTH,
  REVOCATION_KEY_PREFIX,
  REVOCATION_STREAM,
  SIGNATURE_FIELD,
  TTL_FIELD,
  deadLetterStream,
  signRevocationEvent,
  verifyRevocationSignature,
  type RejectionReason,
  type RevocationFields,
} from './revocation/redis-wire.js'

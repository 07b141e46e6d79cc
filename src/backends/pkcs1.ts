/** EMSA-PKCS1-v1_5 encoding for SHA-256 (RFC 8017 §9.2), shared by the backends that build it. */

/** DER of DigestInfo's AlgorithmIdentifier for SHA-256 with NULL parameters (RFC 8017 §9.2 note 1). */
export const SHA256_DIGEST_INFO_PREFIX = Uint8Array.from([
  0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20,
])

/** 0x00 0x01 FF…FF 0x00 DigestInfo(hash), exactly `k` bytes. */
export function emsaPkcs1v15Sha256(hash: Uint8Array, k: number): Uint8Array {
  const t = SHA256_DIGEST_INFO_PREFIX.length + hash.length
  const out = new Uint8Array(k)
  out[0] = 0x00
  out[1] = 0x01
  out.fill(0xff, 2, k - t - 1)
  out[k - t - 1] = 0x00
  out.set(SHA256_DIGEST_INFO_PREFIX, k - t)
  out.set(hash, k - hash.length)
  return out
}

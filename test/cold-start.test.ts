/**
 * Cold start of the wasm backend (bench/cold-start.ts; bench/README.md "Cold start" has the
 * numbers): in fresh processes, the first ES256 verification — module load, key import, one
 * verify — and every verification while the tables are built stay far from what an edge
 * request may spend, and every verdict on the way is right. The bounds are CPU, four times the
 * issue's 15 ms, so that a loaded 2-core machine does not fail them; the bench reports the medians.
 */
import { describe, expect, it } from 'vitest'
import { runColdStart } from '../bench/cold-start.js'

describe('wasm cold start in fresh processes', () => {
  it('first verification ≤ 60 ms of CPU, none while the tables are built above 60 ms, all verdicts right', async () => {
    const c = await runColdStart(3)
    expect({ wrong: c.wrong, neverSteady: c.neverSteady }).toEqual({ wrong: 0, neverSteady: 0 })
    expect(c.firstVerificationMs).toBeLessThanOrEqual(60)
    expect(c.buildingMaxVerifyMs).toBeLessThanOrEqual(60)
  }, 120_000)
})

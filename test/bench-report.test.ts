/**
 * The bench's report (bench/targets.ts, bench/svg-chart.ts): met and missed are computed from the
 * measured rows and end-to-end ratios, never typed, and a target that was not measured, or measured
 * with too few rounds, is neither.
 */
import { describe, expect, it } from 'vitest'
import { barChart } from '../bench/svg-chart.js'
import { evaluateTargets, shownValue, verdict } from '../bench/targets.js'
import type { E2eResults, E2eVariantResult } from '../bench/e2e-suite.js'
import type { BenchRow } from '../bench/rows.js'

const row = (alg: string, name: string, opsPerSec: number): BenchRow => ({
  suite: 'verify',
  alg,
  group: 'cold',
  name,
  opsPerSec,
})

const variant = (id: string, vs: E2eVariantResult['vs'], non2xx = 0): E2eVariantResult => ({
  id,
  label: id,
  tokens: 'cold',
  unpinned: false,
  runs: [],
  vs,
  non2xx,
  errors: 0,
})

function e2e(rounds: number, non2xx = 0): E2eResults {
  return {
    pinned: { server: 0, loader: 1 },
    connections: 16,
    coldTokens: 1000,
    servers: [
      {
        server: 'gateway',
        rounds,
        warmupSec: 1,
        durationSec: 3,
        variants: [
          variant('caracal-cold', { jose: { reqPerSec: 2.6, cpuPerReq: 0.5 } }, non2xx),
          variant('caracal-warm', { none: { reqPerSec: 0.96, cpuPerReq: 1 } }),
        ],
      },
    ],
  }
}

const find = (targets: ReturnType<typeof evaluateTargets>, what: string) => {
  const t = targets.find((x) => x.what.startsWith(what))
  if (t === undefined) throw new Error(`no target ${what}`)
  return t
}

describe('bench targets', () => {
  it('judges a ratio of two rows against its bound, either side of it', () => {
    const met = evaluateTargets(
      [row('ES256', 'CaracalAuth cold (auto)', 40_000), row('ES256', 'plain jose verifier', 8_000)],
      undefined,
    )
    expect(find(met, 'cold ES256 auto ≥ 4× plain jose')).toMatchObject({ value: 5, met: true })
    expect(shownValue(find(met, 'cold ES256 auto ≥ 4× plain jose'))).toBe('5.000×')
    const missed = evaluateTargets(
      [row('ES256', 'CaracalAuth cold (auto)', 30_000), row('ES256', 'plain jose verifier', 8_000)],
      undefined,
    )
    expect(find(missed, 'cold ES256 auto ≥ 4× plain jose')).toMatchObject({ value: 3.75, met: false })
    expect(verdict(find(missed, 'cold ES256 auto ≥ 4× plain jose'))).toBe('MISSED')
  })

  it('leaves what was not measured unjudged', () => {
    const t = find(evaluateTargets([], undefined), 'gateway hop: CaracalAuth cold ≥ 2.5×')
    expect(t).toMatchObject({ value: null, met: null })
    expect(verdict(t)).toBe('—')
  })

  it('judges end-to-end ratios from the rounds the issue asks for, not fewer', () => {
    const full = evaluateTargets([], e2e(5))
    expect(find(full, 'gateway hop: CaracalAuth cold ≥ 2.5×')).toMatchObject({ value: 2.6, met: true })
    expect(find(full, 'gateway hop: CaracalAuth cold ≤ 0.45×')).toMatchObject({ value: 0.5, met: false })
    expect(find(full, 'gateway hop: CaracalAuth warm ≥ 0.97×')).toMatchObject({ value: 0.96, met: false })
    const short = find(evaluateTargets([], e2e(2)), 'gateway hop: CaracalAuth cold ≥ 2.5×')
    expect(short).toMatchObject({ value: 2.6, met: null, note: '2 rounds; judged from 5' })
  })

  it('counts any non-2xx answer to a valid token as a miss', () => {
    expect(find(evaluateTargets([], e2e(5)), 'non-2xx')).toMatchObject({ value: 0, met: true })
    expect(find(evaluateTargets([], e2e(5, 3)), 'non-2xx')).toMatchObject({ value: 3, met: false })
  })
})

describe('bench charts', () => {
  it('draws one bar per value, scaled to the largest of its panel, with text escaped', () => {
    const svg = barChart('req/s <median>', [
      {
        title: 'gateway',
        bars: [
          { label: 'a & b', value: 100, shown: '100' },
          { label: 'c', value: 50, shown: '50', accent: true },
        ],
      },
    ])
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true)
    expect(svg).toContain('<title id="title">req/s &lt;median&gt;</title>')
    expect(svg).toContain('>a &amp; b</text>')
    const widths = [...svg.matchAll(/<rect x="300" y="\d+" width="([\d.]+)"/g)].map((m) => Number(m[1]))
    expect(widths).toHaveLength(2)
    expect(widths[1]! / widths[0]!).toBeCloseTo(0.5, 5)
  })
})

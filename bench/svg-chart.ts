/**
 * Horizontal bar charts as SVG, for bench/README.md: panels stacked one above the other (one per
 * server, each on its own scale: the gateway hop and fastmcp differ by 40×), one bar per variant,
 * its value written at its end. Plain text output, no dependency, deterministic for a given input.
 */

export interface Bar {
  readonly label: string
  readonly value: number
  /** The value as written beside the bar. */
  readonly shown: string
  /** Drawn in the accent colour (CaracalAuth's variants). */
  readonly accent?: boolean
}

export interface Panel {
  readonly title: string
  readonly bars: readonly Bar[]
}

const WIDTH = 760
const LABEL_W = 300
const VALUE_W = 110
const BAR_H = 18
const GAP = 6
const TITLE_H = 28
const PANEL_GAP = 18

const xml = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')

export function barChart(title: string, panels: readonly Panel[]): string {
  const parts: string[] = []
  let y = 34
  parts.push(`<text x="12" y="22" class="t">${xml(title)}</text>`)
  const plotW = WIDTH - LABEL_W - VALUE_W - 12
  for (const p of panels) {
    y += PANEL_GAP
    parts.push(`<text x="12" y="${y}" class="p">${xml(p.title)}</text>`)
    y += TITLE_H - 14
    const max = Math.max(0, ...p.bars.map((b) => b.value))
    for (const b of p.bars) {
      const w = max > 0 ? Math.max(1, (b.value / max) * plotW) : 0
      const mid = y + BAR_H / 2 + 4
      parts.push(`<text x="${LABEL_W - 8}" y="${mid}" class="l">${xml(b.label)}</text>`)
      parts.push(
        `<rect x="${LABEL_W}" y="${y}" width="${w.toFixed(1)}" height="${BAR_H}" class="${b.accent ? 'a' : 'b'}"/>`,
      )
      parts.push(`<text x="${(LABEL_W + w + 6).toFixed(1)}" y="${mid}" class="v">${xml(b.shown)}</text>`)
      y += BAR_H + GAP
    }
  }
  const height = y + 12
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" role="img" aria-labelledby="title">`,
    `<title id="title">${xml(title)}</title>`,
    '<style>text{font-family:system-ui,-apple-system,Segoe UI,sans-serif;font-size:12px;fill:#222}' +
      '.t{font-size:15px;font-weight:600}.p{font-size:13px;font-weight:600}.l{text-anchor:end}' +
      '.b{fill:#9aa5b1}.a{fill:#d9822b}</style>',
    `<rect width="${WIDTH}" height="${height}" fill="#fff"/>`,
    ...parts,
    '</svg>',
    '',
  ].join('\n')
}

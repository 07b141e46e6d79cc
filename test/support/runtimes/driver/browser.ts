/** Chromium: the page's module; the suite calls these through `page.evaluate`. */
import { benchRoute } from './bench.js'
import { runCases } from './cases.js'

Object.assign(globalThis, { caracalDriver: { runCases, benchRoute } })

/** Chromium, cold start: the page's module, with nothing of the library until `coldRoute` runs. */
import { coldRoute } from './cold.js'

Object.assign(globalThis, { caracalDriver: { coldRoute } })

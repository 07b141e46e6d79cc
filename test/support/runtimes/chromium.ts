/**
 * Headless Chromium (Debian's `chromium`, or CHROMIUM_PATH), driven by playwright-core. The flags
 * keep it off the network (a closed network refuses the connections Chromium makes on its own) and
 * out of the sandbox (containers without user namespaces); playwright gives every launch a fresh
 * profile directory of its own.
 */
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { chromium, type Browser, type Page } from 'playwright-core'
import { probeBinary } from './runtime-binaries.js'

export const CHROMIUM = probeBinary('Chromium', process.env.CHROMIUM_PATH ?? '/usr/bin/chromium')

export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
]

export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM.path, args: CHROMIUM_ARGS, timeout: 30_000 })
}

/** The page that loads the bundle as a module, as a web app's index.html does (no favicon request). */
export function writeIndexHtml(dir: string): void {
  writeFileSync(
    join(dir, 'index.html'),
    '<!doctype html>\n<link rel="icon" href="data:,">\n<script type="module" src="./bundle.js"></script>\n',
  )
}

/** A fresh page (its own context, so its own renderer process) with the driver loaded from `dir` of the origin. */
export async function openDriverPage(
  browser: Browser,
  origin: string,
  dir = '',
): Promise<{ page: Page; errors: string[] }> {
  const context = await browser.newContext()
  const page = await context.newPage()
  const errors: string[] = []
  page.on('pageerror', (error) => errors.push(error.message))
  page.on('console', (message) => {
    if (message.type() === 'error') errors.push(message.text())
  })
  await page.goto(`${origin}${dir}/index.html`)
  try {
    await page.waitForFunction(() => 'caracalDriver' in globalThis, undefined, { timeout: 15_000 })
  } catch (error) {
    throw new Error(`the driver did not load in Chromium: ${errors.join('; ') || (error as Error).message}`)
  }
  return { page, errors }
}

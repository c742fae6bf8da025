/// <reference lib="dom" />
// The whole app as a user meets it: web mode started from the built output, a real Chromium,
// every section walked, the file picker used, the system panel read, the token enforced.
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Browser, Page } from 'playwright-core'
import { launchBrowser, shot, slowNetwork, startWebApp, type RunningApp } from '../helpers/web-app.ts'
import { tempDir } from '../helpers/temp.ts'

let dir: Awaited<ReturnType<typeof tempDir>>
let app: RunningApp
let browser: Browser
let page: Page
const pageErrors: string[] = []

beforeAll(async () => {
  dir = await tempDir('longctx-e2e-')
  await mkdir(join(dir.path, 'pick-me/inner'), { recursive: true })
  await writeFile(join(dir.path, 'pick-me/notes.txt'), 'hello')
  await writeFile(join(dir.path, 'pick-me/.secret'), 'hidden')
  app = await startWebApp(dir.path)
  browser = await launchBrowser()
  page = await browser.newPage({ viewport: { width: 1280, height: 820 } })
  await slowNetwork(page, 150)
  page.on('pageerror', (err) => pageErrors.push(String(err)))
  page.on('console', (msg) => {
    // Chromium logs every non-2xx fetch as a console error; a refused model (422) is expected.
    if (msg.type() === 'error' && !msg.text().startsWith('Failed to load resource')) pageErrors.push(msg.text())
  })
})

afterAll(async () => {
  await browser?.close()
  await app?.stop()
  await dir?.cleanup()
})

describe('web mode in a real browser', () => {
  it('refuses a visit without the token', async () => {
    const bare = await browser.newPage()
    const res = await bare.goto(app.origin + '/')
    expect(res?.status()).toBe(401)
    expect(await bare.textContent('body')).toContain('access token')
    await bare.close()
  })

  it('opens with the token and drops it from the address bar', async () => {
    await page.goto(app.url)
    await page.waitForSelector('nav')
    expect(page.url()).not.toContain('token=')
    // the bundled core finds the app's version (it once reported v0.0.0 from inside out/main/chunks)
    const pkg = JSON.parse(await readFile(join(import.meta.dirname, '../../package.json'), 'utf8'))
    await expect.poll(() => page.getByTestId('footer-version').textContent()).toContain(pkg.version)
    await shot(page, '01-runs-home')
  })

  it('walks every section', async () => {
    const sections: Array<[string, string]> = [
      ['Runs', '/'],
      ['New run', '/new'],
      ['Monitor', '/monitor'],
      ['Chat', '/chat'],
      ['Settings', '/settings'],
    ]
    // the sidebar lists the sections in the app's order, home first
    const navLabels = await page.getByTestId('sidebar').getByRole('link').allTextContents()
    expect(navLabels.map((t) => t.trim())).toEqual(sections.map(([label]) => label))
    for (const [label, path] of sections) {
      await page.getByTestId('sidebar').getByRole('link', { name: label, exact: true }).click()
      await page.waitForURL((u) => u.hash === `#${path}` || (path === '/' && (u.hash === '#/' || u.hash === '')))
      await expect.poll(() => page.locator('h1').first().textContent()).toBeTruthy()
      await shot(page, `02-section-${label.toLowerCase().replace(/\s+/g, '-')}`)
    }
  })

  it('shows the system panel with real figures', async () => {
    await page.goto(app.origin + '/#/settings')
    const panel = page.getByTestId('system-panel')
    await panel.waitFor()
    const cores = await page.getByTestId('sys-cpu-cores').textContent()
    expect(Number((cores ?? '').match(/\d+/)?.[0])).toBeGreaterThan(0)
    expect(await page.getByTestId('sys-ram').textContent()).toMatch(/GiB|MiB/)
    expect(await page.getByTestId('sys-disk').textContent()).toMatch(/GiB|MiB|TiB/)
    expect(await page.getByTestId('sys-gpus').textContent()).toMatch(/no NVIDIA GPU found|NVIDIA|GPU/i)
    await shot(page, '03-settings-system')
  })

  it('picks a folder with the in-app file browser and uses it as the data folder', async () => {
    await page.goto(app.origin + '/#/settings')
    await page.getByTestId('settings-data-dir').getByTestId('path-picker-browse').click()
    const browserModal = page.getByTestId('file-browser')
    await browserModal.waitFor()
    // Go straight to the temp folder through the path field, then into pick-me.
    await page.getByTestId('fb-path').fill(dir.path)
    await page.getByTestId('fb-path').press('Enter')
    await page.locator('[data-testid="fb-entry"][data-name="pick-me"]').dblclick()
    await page.locator('[data-testid="fb-entry"][data-name="inner"]').waitFor()
    await expect.poll(() => page.locator('[data-testid="fb-entry"][data-name=".secret"]').count()).toBe(0)
    await page.getByTestId('fb-hidden-toggle').click()
    await page.locator('[data-testid="fb-entry"][data-name=".secret"]').waitFor()
    await shot(page, '04-file-browser')
    await page.getByTestId('fb-select').click()
    await browserModal.waitFor({ state: 'hidden' })
    const field = page.getByTestId('settings-data-dir').getByTestId('path-picker-input')
    await expect.poll(() => field.inputValue()).toBe(join(dir.path, 'pick-me'))
    // the core took it: the settings file on disk names the new folder
    const saved = JSON.parse(await readFile(join(dir.path, 'config/settings.json'), 'utf8'))
    expect(saved.dataDir).toBe(join(dir.path, 'pick-me'))
  })

  it('switches between dark and light themes', async () => {
    await page.goto(app.origin + '/#/settings')
    await page.getByTestId('settings-theme').locator('[data-value="light"]').click()
    await expect.poll(() => page.evaluate(() => document.documentElement.dataset.theme)).toBe('light')
    await shot(page, '05-light-theme')
    await page.getByTestId('settings-theme').locator('[data-value="dark"]').click()
    await expect.poll(() => page.evaluate(() => document.documentElement.dataset.theme)).toBe('dark')
  })

  it('imports a model in the wizard, and explains a broken one', async () => {
    const fixture = join(import.meta.dirname, '../fixtures/tiny-gpt2')
    const config = JSON.parse(await readFile(join(fixture, 'config.json'), 'utf8'))
    await page.goto(app.origin + '/#/new')
    const field = page.getByTestId('model-path').getByTestId('path-picker-input')
    await field.fill(fixture)
    await field.press('Enter')
    await page.getByTestId('model-info').waitFor()
    expect(await page.getByTestId('mi-layers').textContent()).toContain(String(config.n_layer))
    expect(await page.getByTestId('mi-context').textContent()).toMatch(/128/)
    expect(await page.getByTestId('mi-tokenizer').getAttribute('data-state')).toBe('found')
    expect(await page.getByTestId('mi-attn-cell').count()).toBe(config.n_layer)
    await shot(page, '06-model-step')

    // the same model with its weights cut short: the step says which file and what is wrong
    const broken = join(dir.path, 'broken-model')
    await mkdir(broken)
    await copyFile(join(fixture, 'config.json'), join(broken, 'config.json'))
    const weights = await readFile(join(fixture, 'model.safetensors'))
    await writeFile(join(broken, 'model.safetensors'), weights.subarray(0, weights.length >> 1))
    await field.fill(broken)
    await field.press('Enter')
    await page.getByTestId('model-error').waitFor()
    const message = (await page.getByTestId('model-error').textContent()) ?? ''
    expect(message).toContain('model.safetensors')
    expect(message.toLowerCase()).toMatch(/truncated|shorter|ends|size/)
    await shot(page, '07-model-step-broken')
  })

  it('raised no uncaught errors in the page', () => {
    expect(pageErrors).toEqual([])
  })
})

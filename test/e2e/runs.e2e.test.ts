// Datasets and staged runs as a user meets them, in a real browser against the built app in web
// mode: import a folder and a .jsonl in the wizard's Dataset step and read the histogram; run the
// demo from the wizard to the final perplexity table and passkey heatmap, kill the training worker
// mid-run, resume it, and check the numbers on screen against the run's own files; export the
// run from the runs list to HF and GGUF and chat with the run and its GGUF in compare mode.
import { readFile, readdir, writeFile, mkdir } from 'node:fs/promises'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Browser, Page } from 'playwright-core'
import type { EvalResult } from '../../src-main/api/runs.ts'
import { formatPpl } from '../../src-renderer/src/format.ts'
import { launchBrowser, screenshotDir, shot, slowNetwork, startWebApp, type RunningApp } from '../helpers/web-app.ts'
import { tempDir } from '../helpers/temp.ts'

const root = join(import.meta.dirname, '../..')
const modelDir = join(root, 'test/fixtures/tiny-gpt2')
const corpus = join(root, 'resources/corpus/kjv-chapters.jsonl')
// The embedded demo model (made by the backend's script) is used when it is installed.
const demoInstalled = existsSync(join(root, 'resources/demo/config.json'))

let dir: Awaited<ReturnType<typeof tempDir>>
let app: RunningApp
let browser: Browser
let page: Page
const pageErrors: string[] = []

/** Text of `n` chapters, joined: documents of very different lengths from one real corpus. */
async function chapters(): Promise<Array<{ title: string; text: string }>> {
  const lines = (await readFile(corpus, 'utf8')).split('\n').filter(Boolean)
  return lines.map((l) => JSON.parse(l) as { title: string; text: string })
}

beforeAll(async () => {
  dir = await tempDir('longctx-e2e-runs-')
  const ch = await chapters()
  // a folder of 30 .txt documents: single chapters and runs of several, so lengths spread out
  const folder = join(dir.path, 'psalms-folder')
  await mkdir(folder, { recursive: true })
  for (let i = 0; i < 30; i++) {
    const k = 1 + (i % 6) * 2 // 1..11 chapters per document
    const text = ch.slice(i * 12, i * 12 + k).map((c) => c.text).join('\n\n')
    await writeFile(join(folder, `doc-${String(i).padStart(2, '0')}.txt`), text)
  }
  // a .jsonl of 60 records with title and text fields, one chapter each
  const jsonl = ch.slice(400, 460).map((c) => JSON.stringify({ title: c.title, text: c.text, n: 1 })).join('\n') + '\n'
  await writeFile(join(dir.path, 'chapters.jsonl'), jsonl)

  app = await startWebApp(dir.path)
  browser = await launchBrowser()
  page = await browser.newPage({ viewport: { width: 1280, height: 900 } })
  await slowNetwork(page, 150)
  page.on('pageerror', (err) => pageErrors.push(String(err)))
  // straight into the wizard (the token rides in the query, the page's route in the hash)
  await page.goto(app.url + '#/new')
  await page.waitForSelector('nav')
})

afterAll(async () => {
  await browser?.close()
  await app?.stop()
  await dir?.cleanup()
})

async function chooseModel() {
  const input = page.getByTestId('model-path').getByTestId('path-picker-input')
  await input.fill(modelDir)
  await input.press('Enter')
  await page.getByTestId('model-info').waitFor()
  await page.getByTestId('wizard-next').click()
  await page.getByTestId('dataset-step').waitFor()
}

async function importSource(kind: 'file' | 'folder', path: string) {
  await page.getByTestId('ds-kind').locator(`[data-value="${kind}"]`).click()
  const input = page.getByTestId('ds-path').getByTestId('path-picker-input')
  await input.fill(path)
  await input.press('Enter')
  await page.getByTestId('ds-preview').waitFor()
  await expect.poll(() => page.getByTestId('ds-doc').count()).toBeGreaterThan(0)
  await page.getByTestId('ds-import').click()
  // the statistics card of the new dataset replaces any earlier one
  await page.locator('[data-testid="ds-progress"][data-phase="done"]').waitFor({ timeout: 60_000 })
  await page.getByTestId('ds-stats').waitFor()
}

/** The dataset's manifest on disk, for comparing with the screen. */
async function datasetOnDisk(id: string): Promise<{ stats: { documents: number; tokens: number; lengthHistogram: Array<{ label: string; documents: number }> } }> {
  const base = join(dir.path, 'data/datasets', id)
  for (const name of await readdir(base)) {
    if (!name.endsWith('.json')) continue
    const j = JSON.parse(await readFile(join(base, name), 'utf8'))
    if (j?.stats?.lengthHistogram) return j
  }
  throw new Error(`no manifest with statistics in ${base}`)
}

describe('dataset step', () => {
  it('imports a folder of .txt files and shows its histogram', async () => {
    await chooseModel()
    await importSource('folder', join(dir.path, 'psalms-folder'))
    expect(await page.getByTestId('ds-preview').getAttribute('data-format')).toBe('folder')
    const stats = page.getByTestId('ds-stats')
    const id = (await stats.getAttribute('data-id'))!
    const disk = await datasetOnDisk(id)
    expect(Number(await page.getByTestId('ds-documents').getAttribute('data-value'))).toBe(disk.stats.documents)
    expect(Number(await page.getByTestId('ds-tokens').getAttribute('data-value'))).toBe(disk.stats.tokens)
    // one bar per bucket, each with the count on disk, and more than one bucket in use
    const bars = page.getByTestId('ds-histogram-bar')
    expect(await bars.count()).toBe(disk.stats.lengthHistogram.length)
    for (const b of disk.stats.lengthHistogram) {
      expect(await page.locator(`[data-testid="ds-histogram-bar"][data-label="${b.label}"]`).getAttribute('data-value')).toBe(String(b.documents))
    }
    expect(disk.stats.lengthHistogram.filter((b) => b.documents > 0).length).toBeGreaterThan(1)
    expect(await page.getByTestId('ds-atleast-row').count()).toBe(4)
    // chapters are a few thousand tokens at most: the 8k warning must be in view
    expect(await page.getByTestId('ds-warning').count()).toBeGreaterThan(0)
    await shot(page, 'runs-01-dataset-folder')
    await page.getByTestId('ds-stats').screenshot({ path: join(screenshotDir, 'runs-01b-dataset-stats.png') })
  })

  it('imports a .jsonl, with its fields to pick from', async () => {
    await importSource('file', join(dir.path, 'chapters.jsonl'))
    expect(await page.getByTestId('ds-preview').getAttribute('data-format')).toBe('jsonl')
    // the text field was found and is ticked; title is offered too
    expect(await page.locator('[data-testid="ds-field"][data-name="text"] [data-testid="ds-field-use"]').isChecked()).toBe(true)
    expect(await page.locator('[data-testid="ds-field"][data-name="title"]').count()).toBe(1)
    const id = (await page.getByTestId('ds-stats').getAttribute('data-id'))!
    const disk = await datasetOnDisk(id)
    expect(Number(await page.getByTestId('ds-documents').getAttribute('data-value'))).toBe(disk.stats.documents)
    await expect.poll(() => page.getByTestId('ds-list-item').count()).toBe(2)
    await shot(page, 'runs-02-dataset-jsonl')
    await page.getByTestId('ds-preview').screenshot({ path: join(screenshotDir, 'runs-02b-dataset-preview.png') })
  })
})

interface RunState {
  workerPid: number | null
  status: string
}

async function runFile<T>(id: string, name: string): Promise<T[]> {
  const text = await readFile(join(dir.path, 'data/runs', id, name), 'utf8')
  return text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as T)
}

async function runState(id: string): Promise<RunState> {
  return JSON.parse(await readFile(join(dir.path, 'data/runs', id, 'state.json'), 'utf8')) as RunState
}

/** The status chip's status, read from the page. */
function monitorStatus() {
  return page.getByTestId('monitor-status').getAttribute('data-status')
}

/**
 * From the wizard to a started run. With the embedded demo model installed (resources/demo) this
 * is the demo card; without it, the same wizard walked by hand with the fixture model and the
 * .jsonl imported above, its plan cut to 2 x 12 steps in the Plan step.
 */
async function startRunFromWizard(): Promise<string> {
  await page.goto(app.origin + '/#/new')
  await page.getByTestId('wizard').waitFor()
  if (demoInstalled) {
    await page.getByTestId('wizard-demo').click()
    await page.getByTestId('review-step').waitFor({ timeout: 120_000 })
    await page.locator('[data-testid="wizard-step"][data-step="plan"]').click()
    await page.getByTestId('plan-step').waitFor()
  } else {
    // the dataset tests left the model and the .jsonl chosen
    await page.locator('[data-testid="wizard-step"][data-step="plan"]').click()
    await page.getByTestId('plan-stage-row').first().waitFor({ timeout: 30_000 })
    const rows = page.getByTestId('plan-stage-row')
    for (let i = 0; i < (await rows.count()); i++) {
      const row = rows.nth(i)
      await row.getByTestId('plan-field-steps').fill('12')
      await row.getByTestId('plan-field-evalEvery').fill('6')
      await row.getByTestId('plan-field-checkpointEvery').fill('4')
    }
  }
  // the memory estimate answers for the plan on screen
  await page.locator('[data-testid="plan-verdict"]').waitFor({ timeout: 30_000 })
  await expect.poll(() => page.getByTestId('plan-estimate').getAttribute('data-stale'), { timeout: 10_000 }).toBeNull()
  await shot(page, 'runs-03-plan')
  await page.locator('[data-testid="wizard-step"][data-step="review"]').click()
  await page.getByTestId('review-step').waitFor()
  await shot(page, 'runs-04-review')
  await page.getByTestId('review-start').click()
  await page.waitForURL(/#\/monitor\/[\w-]+$/, { timeout: 30_000 })
  return decodeURIComponent(new URL(page.url()).hash.replace('#/monitor/', ''))
}

describe('a staged run', () => {
  let runId = ''

  it('starts from the wizard and shows live figures', async () => {
    runId = await startRunFromWizard()
    await page.getByTestId('monitor-head').waitFor()
    await expect.poll(monitorStatus, { timeout: 30_000 }).toBe('running')
    // the worker has saved a checkpoint (every 4 steps in the hand-made plan, 8 in the demo's)
    await expect
      .poll(async () => Number((await page.getByTestId('monitor-step').textContent())?.replace(/,/g, '')), { timeout: 180_000, interval: 500 })
      .toBeGreaterThanOrEqual(demoInstalled ? 10 : 6)
    await shot(page, 'runs-05-monitor-live')
  })

  it('survives a killed worker: interrupted, then resumed to the end', async () => {
    const { workerPid } = await runState(runId)
    expect(workerPid).toBeGreaterThan(0)
    process.kill(workerPid!, 'SIGKILL')
    await expect.poll(monitorStatus, { timeout: 30_000 }).toBe('interrupted')
    await page.getByTestId('monitor-message').waitFor()
    await shot(page, 'runs-06-monitor-interrupted')
    await page.getByTestId('monitor-resume').click()
    await expect.poll(monitorStatus, { timeout: 30_000 }).toMatch(/running|completed/)
    await expect.poll(monitorStatus, { timeout: 300_000, interval: 1000 }).toBe('completed')
  })

  it('shows the numbers the run wrote to its files', async () => {
    // a reload re-attaches from the files, not from what the page collected live
    await page.reload()
    await page.getByTestId('monitor-ppl-table').waitFor()
    const metrics = await runFile<{ step: number }>(runId, 'metrics.jsonl')
    const evals = await runFile<EvalResult>(runId, 'evals.jsonl')
    const steps = metrics.map((m) => m.step)
    const last = Math.max(...steps)
    expect(new Set(steps).size).toBe(last) // every step once, none lost to the kill
    expect((await page.getByTestId('monitor-step').textContent())?.replace(/,/g, '')).toBe(String(last))

    const baseline = evals.find((e) => e.label === 'baseline')!
    const windows = [...new Set(evals.flatMap((e) => e.windows.map((w) => w.length)))]
    expect(await page.getByTestId('ppl-row').count()).toBeGreaterThanOrEqual(windows.length)
    for (const w of windows) {
      const row = page.locator(`[data-testid="ppl-row"][data-window="${w}"]`)
      const latest = [...evals].reverse().find((e) => e.label !== 'baseline' && e.windows.some((x) => x.length === w))
      const want = latest?.windows.find((x) => x.length === w)?.ppl
      const base = baseline.windows.find((x) => x.length === w)?.ppl
      expect(Number(await row.getAttribute('data-latest'))).toBe(want)
      if (base !== undefined) expect(Number(await row.getAttribute('data-baseline'))).toBe(base)
      expect(await row.getByTestId('ppl-latest').textContent()).toContain(formatPpl(want))
    }

    const withPasskey = [...evals].reverse().find((e) => e.passkey && e.passkey.length)
    if (withPasskey) {
      expect(await page.getByTestId('passkey-cell').count()).toBe(withPasskey.passkey!.length)
      for (const c of withPasskey.passkey!) {
        const cell = page.locator(`[data-testid="passkey-cell"][data-length="${c.length}"][data-depth="${c.depth}"]`)
        expect(Number(await cell.getAttribute('data-accuracy'))).toBe(c.accuracy)
        expect(await cell.textContent()).toBe(String(Math.round(c.accuracy * 100)))
      }
    }
    await shot(page, 'runs-07-monitor-done')
    await page.getByTestId('monitor-ppl-table').scrollIntoViewIfNeeded()
    await shot(page, 'runs-08-monitor-results')
    // the charts are canvases: they must redraw in the other theme's colours
    await page.getByTestId('theme-toggle').click()
    await page.getByTestId('monitor-chart-loss').scrollIntoViewIfNeeded()
    await shot(page, 'runs-08b-monitor-other-theme')
    await page.getByTestId('theme-toggle').click()
  })

  it('exports the run from the runs list to HF and GGUF, then chats with the run and its GGUF side by side', async () => {
    await page.getByTestId('sidebar').getByRole('link', { name: 'Runs', exact: true }).click()
    const row = page.locator(`[data-testid="run-row"][data-id="${runId}"]`)
    await row.waitFor()
    // a completed run exports its final model (the summary's modelSource)
    expect(await row.getByTestId('run-export').getAttribute('data-source')).toBe('final')
    await row.getByTestId('run-export').click()
    const dialog = page.getByTestId('export-dialog')
    await dialog.waitFor()
    expect(await dialog.getByTestId('export-source').textContent()).toContain(join(dir.path, 'data/runs', runId, 'final'))
    const outDir = join(dir.path, 'run-exports')
    const input = dialog.getByTestId('export-out').getByTestId('path-picker-input')
    await input.fill(outDir)
    await input.press('Enter')
    for (const [format, type] of [
      ['hf', null],
      ['gguf', 'f16'],
    ] as const) {
      await dialog.getByTestId('export-format').locator(`[data-value="${format}"]`).click()
      if (type) await dialog.getByTestId('export-type').locator(`[data-value="${type}"]`).click()
      await dialog.getByTestId('export-start').click()
      await expect.poll(() => dialog.getByTestId('export-progress').getAttribute('data-phase'), { timeout: 60_000 }).toBe('done')
      await dialog.getByTestId('export-result').waitFor()
      await page.waitForTimeout(500) // the progress bar's width eases in over 0.4 s
      await shot(page, `runs-export-01-${format}`)
      if (format === 'hf') await dialog.getByTestId('export-again').click()
    }
    await dialog.getByTestId('export-close').click()
    const outputs = await readdir(outDir)
    const hf = outputs.find((n) => n.endsWith('-hf'))
    const gguf = outputs.find((n) => n.endsWith('.f16.gguf'))
    expect(hf && gguf, outputs.join(', ')).toBeTruthy()
    expect(await readdir(join(outDir, hf!))).toEqual(expect.arrayContaining(['config.json', 'model.safetensors', 'tokenizer.json']))
    expect((await readFile(join(outDir, gguf!))).toString('latin1', 0, 4)).toBe('GGUF')

    // Chat, compare mode: the run on the native engine (left), its GGUF in node-llama-cpp (right)
    await page.getByTestId('sidebar').getByRole('link', { name: 'Chat', exact: true }).click()
    await page.getByTestId('chat-view').waitFor()
    await page.getByTestId('chat-compare-toggle').click()
    const side = (s: 'a' | 'b') => page.locator(`[data-testid="chat-model-picker"][data-side="${s}"]`)
    const column = (s: 'a' | 'b') => page.locator(`[data-testid="chat-column"][data-side="${s}"]`)
    await side('a').getByTestId('chat-source-kind').locator('[data-value="run"]').click()
    const option = side('a').locator(`[data-testid="chat-run-select"] option[value="${runId}"]`)
    await option.waitFor({ state: 'attached' })
    expect(await option.textContent()).toMatch(/^\s*Run .+ — final\s*$/)
    await side('a').getByTestId('chat-run-select').selectOption(runId)
    await side('a').getByTestId('chat-load').click()
    await expect.poll(() => side('a').getByTestId('chat-backend').textContent(), { timeout: 60_000 }).toMatch(/Native engine/)
    await side('b').getByTestId('chat-source-kind').locator('[data-value="gguf"]').click()
    const ggufInput = side('b').getByTestId('chat-gguf-path').getByTestId('path-picker-input')
    await ggufInput.fill(join(outDir, gguf!))
    await ggufInput.press('Enter')
    await side('b').getByTestId('chat-load').click()
    await expect.poll(() => side('b').getByTestId('chat-backend').textContent(), { timeout: 60_000 }).toMatch(/GGUF/)
    // both sides carry the run's name: the left from the run's plan, the right from the GGUF metadata
    expect(await side('a').getByTestId('chat-model-name').textContent()).toBe(await side('b').getByTestId('chat-model-name').textContent())
    await page.getByTestId('chat-input').fill('In the beginning')
    await page.getByTestId('chat-send').click()
    for (const s of ['a', 'b'] as const) {
      const answers = column(s).locator('[data-testid="chat-message"][data-role="assistant"]')
      await expect
        .poll(async () => (await answers.count()) > 0 && (await answers.last().getAttribute('data-streaming')) === null, { timeout: 60_000 })
        .toBe(true)
      expect(((await answers.last().locator('.text').textContent()) ?? '').length, `side ${s}`).toBeGreaterThan(0)
      expect(Number(await column(s).getByTestId('chat-tps').textContent()), `side ${s}`).toBeGreaterThan(0)
    }
    await page.waitForTimeout(500)
    await shot(page, 'runs-export-02-chat-compare')
    // free both models before the run (whose final/ the left side opened) is deleted
    await side('a').getByTestId('chat-unload').click()
    await side('b').getByTestId('chat-unload').click()
    await side('b').getByTestId('chat-load').waitFor()
  })

  it('lists the run with its final numbers and deletes it after asking', async () => {
    await page.getByTestId('sidebar').getByRole('link', { name: 'Runs', exact: true }).click()
    const row = page.locator(`[data-testid="run-row"][data-id="${runId}"]`)
    await row.waitFor()
    expect(await row.getAttribute('data-status')).toBe('completed')
    expect(await row.getByTestId('run-ppl').locator('li').count()).toBeGreaterThan(0)
    await shot(page, 'runs-09-runs-list')
    await row.getByTestId('run-delete').click()
    await page.getByTestId('confirm-dialog').waitFor()
    await page.waitForTimeout(300) // let the dialog's fade-in finish before the picture
    await shot(page, 'runs-10-delete-confirm')
    await page.getByTestId('confirm-yes').click()
    await row.waitFor({ state: 'detached' })
    expect(existsSync(join(dir.path, 'data/runs', runId))).toBe(false)
  })
})

describe('page health', () => {
  it('raised no uncaught errors', () => {
    expect(pageErrors).toEqual([])
  })
})


// Swagger UI in a real browser: Debian's chromium, driven by playwright-core (which never
// downloads a browser), against the running service. The page must show every tag and operation
// of the document, take the API key through Authorize, and run ListTenants with "Try it out".
// It loads nothing from outside the service. A full-page screenshot is kept in test-artifacts/.
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { chromium, type BrowserContext, type Page } from "playwright-core";
import { startTestApp, TEST_API_KEY, type TestApp } from "./helpers/app";
import { uniquePrefix } from "./helpers/postgres";
import { REPO_ROOT } from "./helpers/process";
import { rest } from "./helpers/rest";

const CHROMIUM = "/usr/bin/chromium";
const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];
/** Where the screenshot is kept (git-ignored). */
const SCREENSHOT = path.join(REPO_ROOT, "test-artifacts", "swaggerui.png");

interface DocumentOperations {
  tags: { name: string }[];
  paths: Record<string, Record<string, { operationId: string; tags: string[] }>>;
}

describe("Swagger UI in chromium", function () {
  // Starting chromium and rendering a 1.5 MB bundle on a shared 2-core machine.
  this.timeout(120_000);
  let app: TestApp;
  let profile: string;
  let context: BrowserContext;
  let page: Page;
  const p = uniquePrefix("ui");
  const tenant = `${p}_acme`;
  /** Requests the page made to anywhere but the service, and what the console reported as errors. */
  const foreign: string[] = [];
  const consoleErrors: string[] = [];

  before(async () => {
    if (!existsSync(CHROMIUM)) {
      throw new Error(`chromium is missing at ${CHROMIUM}: install Debian's package (apt-get install -y chromium; .ci/run does this). This test never downloads a browser.`);
    }
    app = await startTestApp();
    const created = await rest(app, "POST", "/api/tenant/create", { body: { name: tenant } });
    assert.equal(created.status, 200, created.text);
    profile = mkdtempSync(path.join(tmpdir(), "qod-chromium-"));
    context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, viewport: { width: 1280, height: 900 } });
    page = context.pages()[0] ?? (await context.newPage());
    page.on("request", (request) => {
      if (!request.url().startsWith(`${app.httpBase}/`)) foreign.push(request.url());
    });
    page.on("console", (message) => {
      if (message.type() === "error") consoleErrors.push(message.text());
    });
    page.on("pageerror", (err) => consoleErrors.push(err.message));
  });

  after(async () => {
    await context?.close();
    if (profile) rmSync(profile, { recursive: true, force: true });
    await app?.stop();
  });

  it("shows every tag and every operation of the document", async () => {
    const doc = (await (await fetch(`${app.httpBase}/api/openapi`)).json()) as DocumentOperations;
    await page.goto(`${app.httpBase}/swaggerui`);
    await page.locator(".opblock-tag-section").first().waitFor();
    const tags = await page.locator("h3.opblock-tag").evaluateAll((nodes) => nodes.map((n) => n.getAttribute("data-tag")));
    assert.deepEqual(tags, doc.tags.map((t) => t.name));

    const expected = Object.entries(doc.paths)
      .flatMap(([p, item]) => Object.entries(item).map(([method, op]) => `operations-${op.tags[0]}-${op.operationId} ${method.toUpperCase()} ${p}`))
      .sort();
    const shown = await page.locator(".opblock").evaluateAll((nodes) =>
      nodes.map((n) => `${n.id} ${n.querySelector(".opblock-summary-method")?.textContent} ${n.querySelector(".opblock-summary-path")?.getAttribute("data-path")}`),
    );
    assert.deepEqual(shown.sort(), expected);
  });

  it("offers both security schemes in Authorize, and takes the API key", async () => {
    await page.locator("button.authorize").first().click();
    const dialog = page.locator(".dialog-ux .modal-ux");
    await dialog.waitFor();
    const schemes = await dialog.locator(".auth-container h4").allTextContents();
    assert.deepEqual(
      schemes.map((s) => s.replace(/\s+/g, " ").trim()),
      ["ApiKey (apiKey)", "Bearer (http, Bearer)"],
    );
    const apiKey = dialog.locator(".auth-container").filter({ hasText: "X-API-Key" });
    await apiKey.getByLabel("Value:").fill(TEST_API_KEY);
    await apiKey.getByRole("button", { name: "Apply credentials" }).click();
    await apiKey.locator("button", { hasText: "Logout" }).waitFor();
    await apiKey.locator("button", { hasText: "Close" }).click();
    await dialog.waitFor({ state: "detached" });
    // persistAuthorization: the key is kept for the next visit.
    assert.match((await page.evaluate(() => localStorage.getItem("authorized"))) ?? "", /ApiKey/);
  });

  it("runs ListTenants with Try it out, and shows 200 with the tenant created through the API", async () => {
    const operation = page.locator("#operations-TenantService-TenantService_ListTenants");
    await operation.locator(".opblock-summary").click();
    await operation.locator("button.try-out__btn").click();
    await operation.locator("button.execute").click();
    const live = operation.locator(".live-responses-table .response");
    await live.waitFor();
    assert.equal((await live.locator(".response-col_status").textContent())?.trim(), "200");
    const body = await live.locator(".response-col_description pre").first().textContent();
    const shown = JSON.parse(body ?? "") as { tenants: { name: string }[] };
    assert.ok(
      shown.tenants.some((t) => t.name === tenant),
      `the tenant ${tenant} is not in ${body}`,
    );
    // The request the page shows sent the key in its header.
    assert.match((await operation.locator(".curl-command").textContent()) ?? "", /X-API-Key: test-api-key/);

    mkdirSync(path.dirname(SCREENSHOT), { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
  });

  it("loaded nothing from outside the service, and logged no error", () => {
    assert.deepEqual(foreign, []);
    assert.deepEqual(consoleErrors, []);
  });
});

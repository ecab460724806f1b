// End-to-end tests against the real fangpind (tests/console.rs starts it,
// with the OpenID Connect provider of e2e/oidc-provider.mjs, and runs
// `npx playwright test` here). The browser is Debian's Chromium: Playwright
// never downloads one (PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 when installing).
import { defineConfig } from "@playwright/test";

export default defineConfig({
  testDir: "e2e",
  testMatch: "*.spec.ts",
  fullyParallel: false,
  workers: 1,
  retries: 0,
  timeout: 90_000,
  expect: { timeout: 15_000 },
  forbidOnly: true,
  reporter: [["list"]],
  outputDir: "test-results",
  use: {
    viewport: { width: 1366, height: 768 },
    locale: "zh-CN",
    timezoneId: "Asia/Shanghai",
    acceptDownloads: true,
    headless: true,
    trace: "off",
    screenshot: "only-on-failure",
    launchOptions: {
      executablePath: process.env.FANGPIN_CHROMIUM || "/usr/bin/chromium",
      // CI runs as root, where Chromium's sandbox cannot start.
      args: ["--no-sandbox", "--disable-dev-shm-usage"],
    },
  },
  projects: [{ name: "chromium", use: { browserName: "chromium" } }],
});

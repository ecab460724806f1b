// Shared steps of the console's end-to-end tests.
import { expect, type Page } from "@playwright/test";
import { join } from "node:path";

/** A variable tests/console.rs sets; the test fails naming it when missing. */
export function env(name: string): string {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set (tests/console.rs sets it; see console/README.md)`);
  return v;
}

export const CONSOLE_URL = () => env("FANGPIN_CONSOLE_URL");
export const COUNTY = () => env("FANGPIN_E2E_COUNTY");

/** The console at `hash` (e.g. "#/claims?state=paid"). */
export function at(hash: string): string {
  const base = CONSOLE_URL().replace(/#.*$/, "");
  return base + hash;
}

/**
 * Signs in through the real provider: the console redirects to it, its own
 * login page takes the login (any password), a consent page is confirmed if
 * one is shown, and the console comes back with the identity in its header.
 */
export async function signIn(page: Page, login: string, hash = "#/") {
  const consoleOrigin = new URL(CONSOLE_URL()).origin;
  await page.goto(at(hash));
  await page.waitForURL((u) => u.origin !== consoleOrigin, { timeout: 30_000 });
  await page.locator('input[name="login"]').fill(login);
  await page.locator('input[name="password"]').fill("any-password");
  await page.locator('button[type="submit"]').click();
  await page.waitForURL((u) => u.origin === consoleOrigin || u.pathname.includes("/interaction/"), { timeout: 30_000 });
  if (new URL(page.url()).origin !== consoleOrigin) {
    // A consent page: grant "openid fangpin".
    await page.locator('button[type="submit"]').click();
    await page.waitForURL((u) => u.origin === consoleOrigin, { timeout: 30_000 });
  }
  await expect(page.getByTestId("identity-sub")).toHaveText(login);
  // The callback's code and state never stay in the address bar.
  expect(new URL(page.url()).search).toBe("");
}

/** Waits until no section is still loading. */
export async function settled(page: Page) {
  await expect(page.locator(".loading")).toHaveCount(0);
}

/** A full-page screenshot into FANGPIN_SCREENSHOT_DIR, when it is set. */
export async function shot(page: Page, name: string) {
  const dir = process.env.FANGPIN_SCREENSHOT_DIR;
  if (!dir) return;
  await page.screenshot({ path: join(dir, `${name}.png`), fullPage: true });
}

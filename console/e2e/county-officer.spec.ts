// A county officer signs in, finds the paid claim in the list, opens it,
// reads its derivation and checks the assessed amount; the dashboard, the
// list, the claim and the audit page are photographed on the way.
import { expect, test } from "@playwright/test";
import { readFile } from "node:fs/promises";
import { at, COUNTY, env, settled, shot, signIn } from "./helpers";

test("a county officer finds a paid claim and checks its derivation", async ({ page }) => {
  const county = COUNTY();
  const claimId = env("FANGPIN_E2E_CLAIM_ID");
  const assessed = env("FANGPIN_E2E_ASSESSED_YUAN");
  const year = env("FANGPIN_E2E_POLICY_YEAR");

  // The seeded year, whatever the server's business date.
  await signIn(page, "county-officer", `#/?county=${county}&year=${year}`);
  await expect(page.getByTestId("identity-role")).toHaveText("县防贫办");
  await expect(page.getByRole("link", { name: "退出" })).toBeVisible();
  await settled(page);
  await expect(page.getByTestId("pool-posted")).toHaveText(/^-?\d+\.\d{2}$/);
  await expect(page.getByTestId("claims-by-state")).toBeVisible();
  await shot(page, "dashboard");

  // The list of paid claims, paged until the claim shows.
  await page.goto(at(`#/claims?county=${county}&state=paid`));
  const row = page.locator(`tr[data-claim-id="${claimId}"]`);
  for (let i = 0; i < 200; i++) {
    await settled(page);
    await expect(page.getByTestId("claims-table")).toBeVisible();
    if ((await row.count()) > 0) break;
    const next = page.getByRole("button", { name: "下一页" });
    if (await next.isDisabled()) break;
    await next.click();
  }
  await expect(row).toHaveCount(1);
  await expect(row).toContainText("已赔付");
  await shot(page, "claims");

  await row.getByRole("link").first().click();
  await expect(page).toHaveURL(new RegExp(`#/claims/${claimId}$`));
  await expect(page.getByTestId("claim-state")).toHaveText("已赔付");
  const derivation = page.getByTestId("derivation");
  await expect(derivation).toBeVisible();
  await expect(page.getByTestId("assessed-amount")).toHaveText(assessed);
  // The arithmetic is there to recompute: the explanation lines, and the
  // policy version the claim was assessed under.
  await expect(page.getByTestId("explanation").locator("li").first()).toBeVisible();
  await expect(derivation).toContainText("年度 · 第");
  await expect(page.getByTestId("payout-amount")).toHaveText(/^\d+\.\d{2}$/);
  await settled(page);
  await shot(page, "claim");

  // The audit chain, verified by the server, and its export.
  await page.goto(at(`#/audit?county=${county}`));
  await expect(page.getByTestId("audit-intact")).toHaveText(/审计链完整/);
  await settled(page);
  await shot(page, "audit");
  const [download] = await Promise.all([page.waitForEvent("download"), page.getByTestId("audit-export").click()]);
  expect(download.suggestedFilename()).toBe(`audit-${county}.jsonl`);
  const path = test.info().outputPath(download.suggestedFilename());
  await download.saveAs(path);
  const lines = (await readFile(path, "utf8")).split("\n").filter(Boolean);
  expect(lines.length).toBeGreaterThan(0);
  for (const line of lines) {
    const entry = JSON.parse(line) as Record<string, unknown>;
    expect(Object.keys(entry)).toEqual(expect.arrayContaining(["seq", "at", "actor", "role", "rpc", "object", "prev_hash", "hash", "request_id"]));
  }
});

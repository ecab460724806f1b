// A finance officer downloads the ledger statement as XLSX, and the test
// reads it back with an independent reader (Python's openpyxl).
import { expect, test } from "@playwright/test";
import { execFileSync } from "node:child_process";
import { COUNTY, env, settled, shot, signIn } from "./helpers";

const HEADER = ["县", "年度", "序号", "分录号", "记账时间", "类型", "借方科目", "贷方科目", "金额（元）", "金额（分）", "案件编号", "摘要/凭证", "冲销分录"];

const READ_XLSX = `
import json, sys, warnings
warnings.simplefilter("ignore")
from decimal import Decimal
import openpyxl
wb = openpyxl.load_workbook(sys.argv[1], read_only=True)
ws = wb.worksheets[0]
rows = [[None if c is None else c for c in r] for r in ws.iter_rows(values_only=True)]
out = {"sheet": ws.title, "header": rows[0] if rows else [], "rows": []}
for r in rows[1:]:
    out["rows"].append({
        "county": r[0], "year": r[1], "yuan": r[8],
        "fen": r[9], "fen_is_int": isinstance(r[9], (int, float)) and float(r[9]).is_integer(),
        "yuan_matches_fen": r[8] is not None and r[9] is not None and Decimal(str(r[8])) * 100 == Decimal(int(r[9])),
    })
print(json.dumps(out, ensure_ascii=False))
`;

test("a finance officer downloads the statement as XLSX", async ({ page }) => {
  const county = COUNTY();
  const year = env("FANGPIN_E2E_POLICY_YEAR");
  await signIn(page, "finance-officer", `#/finance?county=${county}&year=${year}`);
  await expect(page.getByTestId("identity-role")).toHaveText("财政局");
  await settled(page);
  await expect(page.getByTestId("finance-error")).toHaveCount(0);
  await expect(page.getByTestId("reconciliation-ties")).toBeVisible();
  await expect(page.getByTestId("statement").locator("tbody tr").first()).toBeVisible();
  await shot(page, "finance");

  const [download] = await Promise.all([page.waitForEvent("download"), page.getByTestId("download-statement-xlsx").click()]);
  expect(download.suggestedFilename()).toBe(`statement-${county}-${year}.xlsx`);
  const path = test.info().outputPath(download.suggestedFilename());
  await download.saveAs(path);

  const read = JSON.parse(execFileSync("python3", ["-c", READ_XLSX, path], { encoding: "utf8" })) as {
    header: unknown[];
    rows: { county: unknown; year: unknown; yuan: unknown; fen: unknown; fen_is_int: boolean; yuan_matches_fen: boolean }[];
  };
  expect(read.header).toEqual(HEADER);
  expect(read.rows.length).toBeGreaterThan(0);
  for (const r of read.rows) {
    expect(r.county).toBe(county);
    expect(String(r.year)).toBe(year);
    expect(String(r.yuan)).toMatch(/^-?\d+\.\d{2}$/);
    expect(r.fen_is_int).toBe(true);
    expect(r.yuan_matches_fen).toBe(true);
  }
});

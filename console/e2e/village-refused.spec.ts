// A village committee opens the finance page: the server refuses the calls
// (PERMISSION_DENIED), and the page says so. Nothing is hidden by the UI:
// the page makes the calls and shows the server's answer.
import { expect, test } from "@playwright/test";
import { COUNTY, settled, signIn } from "./helpers";

test("a village committee is refused the finance page by the server", async ({ page }) => {
  const county = COUNTY();
  const refusals: string[] = [];
  page.on("response", (r) => {
    if (r.url().includes("/fangpin.v1.LedgerService/")) {
      const status = r.headers()["grpc-status"];
      if (status) refusals.push(status);
    }
  });
  await signIn(page, "village-1", `#/finance?county=${county}`);
  await expect(page.getByTestId("identity-role")).toHaveText("村委会");
  await settled(page);
  const error = page.getByTestId("finance-error");
  await expect(error).toBeVisible();
  await expect(error).toContainText("PERMISSION_DENIED");
  await expect(error).toContainText("无权访问");
  await expect(page.getByTestId("download-statement-xlsx")).toHaveCount(0);
  // The refusal came from the server (grpc-status 7 on a LedgerService call),
  // in the response headers when the server answers trailers-only.
  if (refusals.length > 0) expect(refusals).toContain("7");
});

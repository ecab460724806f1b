// 财务对账: the reconciliation, the year's status and its close, the ledger
// statement, downloads (CSV, XLSX) and the bank statement match.
import { useState } from "preact/hooks";
import { api, explain, type ShownError } from "../api";
import { current } from "../auth";
import { csv, save, xlsx } from "../download";
import { reconciliationRows, statementRows } from "../exports";
import { byKey, RELIEF_KINDS, shortId, ts, zh } from "../format";
import type { LedgerEntry } from "../gen/fangpin/v1/common_pb";
import type { BankMatchReport, Reconciliation } from "../gen/fangpin/v1/ledger_pb";
import { href, type Route } from "../route";
import { ErrorBox, KV, Money, Section, Show, useAsync, type Async } from "../ui";

const PAGE = 100;

export function Finance({ county, route }: { county: string; route: Route }) {
  const yearParam = Number(route.query.get("year") || 0);
  const [info] = useAsync(
    () => (yearParam ? Promise.resolve(null) : api.serviceInfo.getServiceInfo({})),
    [yearParam],
  );
  const year = yearParam || (info.status === "ok" && info.value ? Number(info.value.today.slice(0, 4)) : 0);
  const pending = () => new Promise<never>(() => {});
  const [rec, reloadRec] = useAsync(() => (year ? api.ledger.getReconciliation({ countyCode: county, policyYear: year }) : pending()), [county, year]);
  const [status, reloadStatus] = useAsync(() => (year ? api.ledger.getYearStatus({ countyCode: county, policyYear: year }) : pending()), [county, year]);
  const [tokens, setTokens] = useState<string[]>([""]);
  const token = tokens[tokens.length - 1];
  const [entries, reloadEntries] = useAsync(
    () => (year ? api.ledger.listEntries({ countyCode: county, policyYear: year, pageSize: PAGE, pageToken: token }) : pending()),
    [county, year, token],
  );
  // The page's calls refused (PERMISSION_DENIED for a role without finance):
  // one box, with the server's code and message.
  const refused = [info, rec, status, entries].find((a): a is Extract<Async<unknown>, { status: "error" }> => a.status === "error");
  const reload = () => {
    reloadRec();
    reloadStatus();
    setTokens([""]);
    reloadEntries();
  };
  return (
    <div class="page">
      <h1>
        财务对账 <small>县 {county}{year ? ` · ${year} 年度` : ""}</small>
      </h1>
      {year > 0 && (
        <p class="year-nav">
          <a href={href("/finance", { county: route.query.get("county") ?? undefined, year: String(year - 1) })}>← {year - 1} 年度</a>
          {" · "}
          <a href={href("/finance", { county: route.query.get("county") ?? undefined, year: String(year + 1) })}>{year + 1} 年度 →</a>
        </p>
      )}
      {refused && <ErrorBox error={refused.error} testid="finance-error" />}
      {!refused && (
        <>
          <div class="grid">
            <Section title="年度对账">
              <Show a={rec}>{(r) => <ReconciliationView r={r} county={county} year={year} />}</Show>
            </Section>
            <Section title="年度状态">
              <Show a={status}>
                {(s) => (
                  <>
                    <p class="big" data-testid="year-state">{s.state === "closed" ? "已结账" : s.state === "open" ? "未结账" : s.state}</p>
                    {s.events.length > 0 && (
                      <table>
                        <thead><tr><th>事件</th><th>经办</th><th>理由</th><th>时间</th></tr></thead>
                        <tbody>
                          {s.events.map((e) => (
                            <tr><td>{e.event === "closed" ? "结账" : e.event === "reopened" ? "重新开账" : e.event}</td><td>{e.actor}</td><td>{e.reason}</td><td>{ts(e.at)}</td></tr>
                          ))}
                        </tbody>
                      </table>
                    )}
                    {s.state !== "closed" && <CloseYear county={county} year={year} onDone={reload} />}
                  </>
                )}
              </Show>
            </Section>
          </div>
          <Section title="资金池明细账">
            <Downloads county={county} year={year} />
            <Show a={entries}>
              {(r) => (
                <>
                  <EntriesTable entries={r.entries} testid="statement" />
                  <div class="pager">
                    <button type="button" disabled={tokens.length === 1} onClick={() => setTokens(tokens.slice(0, -1))}>上一页</button>
                    <span>第 {tokens.length} 页</span>
                    <button type="button" disabled={!r.nextPageToken} onClick={() => setTokens([...tokens, r.nextPageToken])}>下一页</button>
                  </div>
                </>
              )}
            </Show>
          </Section>
          <BankMatch county={county} year={year} />
        </>
      )}
    </div>
  );
}

function ReconciliationView({ r, county, year }: { r: Reconciliation; county: string; year: number }) {
  const [err, setErr] = useState<ShownError | null>(null);
  const rows = () => reconciliationRows(r);
  return (
    <>
      <p class={r.ties ? "ok" : "neg"} data-testid="reconciliation-ties">{r.ties ? "✔ 账实相符：恒等式成立，分类合计与总账一致" : "✘ 账实不符"}</p>
      <KV
        rows={[
          ["上年结转", <Money v={r.openingYuan} />],
          ["＋ 保费收入", <Money v={r.premiumsYuan} />],
          ["＋ 财政补齐", <Money v={r.topUpsYuan} />],
          ["－ 防贫救助", <Money v={r.reliefYuan} />],
          ["－ 先行救助", <Money v={r.advancesYuan} />],
          ["－ 服务费", <Money v={r.serviceFeeYuan} />],
          ["＝ 期末余额", <strong><Money v={r.closingYuan} testid="closing-amount" /></strong>],
          ["结转下年", <Money v={r.rolledOverYuan} />],
          ["资金池余额 / 已预留待付", <><Money v={r.poolYuan} /> / <Money v={r.pendingYuan} /></>],
          ["垫付应收：待追回 / 已追回 / 已核销", <>{r.receivablesOpen} 笔 <Money v={r.receivablesOpenYuan} /> / <Money v={r.receivablesRecoveredYuan} /> / <Money v={r.receivablesWrittenOffYuan} /></>],
          ["分录数", r.entries.toString()],
        ]}
      />
      <Breakdown title="按救助类型" keyTitle="类型" lines={r.byReliefKind} kinds />
      <Breakdown title="按乡镇" keyTitle="乡镇代码" lines={r.byTownship} />
      <div class="buttons">
        <button type="button" onClick={() => save(csv(rows()), `reconciliation-${county}-${year}.csv`)}>下载对账表 CSV</button>
        <button
          type="button"
          data-testid="download-reconciliation-xlsx"
          onClick={async () => {
            try {
              save(await xlsx(rows(), "对账"), `reconciliation-${county}-${year}.xlsx`);
            } catch (e) {
              setErr(explain(e));
            }
          }}
        >
          下载对账表 XLSX
        </button>
      </div>
      {err && <ErrorBox error={err} />}
    </>
  );
}

function Breakdown({ title, keyTitle, lines, kinds }: { title: string; keyTitle: string; lines: Reconciliation["byReliefKind"]; kinds?: boolean }) {
  if (lines.length === 0) return null;
  return (
    <>
      <h3>{title}</h3>
      <table>
        <thead><tr><th>{keyTitle}</th><th class="num">件数</th><th class="num">防贫救助</th><th class="num">先行救助</th></tr></thead>
        <tbody>
          {lines.map((l) => (
            <tr><td>{kinds && byKey(RELIEF_KINDS, l.key) ? `${zh(RELIEF_KINDS, byKey(RELIEF_KINDS, l.key))}（${l.key}）` : l.key}</td><td class="num">{l.claims.toString()}</td><td class="num"><Money v={l.reliefYuan} /></td><td class="num"><Money v={l.advancesYuan} /></td></tr>
          ))}
        </tbody>
      </table>
    </>
  );
}

function EntriesTable({ entries, testid }: { entries: LedgerEntry[]; testid?: string }) {
  return (
    <table data-testid={testid}>
      <thead>
        <tr><th>序号</th><th>记账时间</th><th>类型</th><th>借方</th><th>贷方</th><th class="num">金额</th><th>案件</th><th>摘要/凭证</th><th>冲销</th></tr>
      </thead>
      <tbody>
        {entries.length === 0 && <tr><td colSpan={9} class="muted">无分录</td></tr>}
        {entries.map((e) => (
          <tr>
            <td class="num">{e.sequence.toString()}</td>
            <td>{ts(e.postedAt)}</td>
            <td class="mono">{e.kind}</td>
            <td class="mono">{e.debitAccount}</td>
            <td class="mono">{e.creditAccount}</td>
            <td class="num"><Money v={e.amountYuan} /></td>
            <td>{e.claimId && <a href={href("/claims/" + e.claimId)} class="mono" title={e.claimId}>{shortId(e.claimId)}</a>}</td>
            <td>{e.reference}</td>
            <td class="mono">{e.reversesEntryId}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/** Every entry of the year, page by page (1000 a page). */
async function allEntries(county: string, year: number): Promise<LedgerEntry[]> {
  const out: LedgerEntry[] = [];
  let pageToken = "";
  for (;;) {
    const r = await api.ledger.listEntries({ countyCode: county, policyYear: year, pageSize: 1000, pageToken });
    out.push(...r.entries);
    if (!r.nextPageToken) return out;
    pageToken = r.nextPageToken;
  }
}

function Downloads({ county, year }: { county: string; year: number }) {
  const [busy, setBusy] = useState(false);
  const [err, setErr] = useState<ShownError | null>(null);
  const run = async (kind: "csv" | "xlsx") => {
    setBusy(true);
    setErr(null);
    try {
      const rows = statementRows(await allEntries(county, year));
      const name = `statement-${county}-${year}.${kind}`;
      save(kind === "csv" ? csv(rows) : await xlsx(rows, "明细账"), name);
    } catch (e) {
      setErr(explain(e));
    } finally {
      setBusy(false);
    }
  };
  return (
    <div class="buttons">
      <button type="button" disabled={busy} data-testid="download-statement-csv" onClick={() => run("csv")}>下载明细账 CSV</button>
      <button type="button" disabled={busy} data-testid="download-statement-xlsx" onClick={() => run("xlsx")}>下载明细账 XLSX</button>
      {busy && <span class="muted">正在生成…</span>}
      {err && <ErrorBox error={err} />}
    </div>
  );
}

function CloseYear({ county, year, onDone }: { county: string; year: number; onDone: () => void }) {
  const [open, setOpen] = useState(false);
  // One request id per confirmation: a retry after a failure reuses it, so
  // the server answers the first result and posts nothing twice.
  const [requestId, setRequestId] = useState("");
  const [busy, setBusy] = useState(false);
  const [err, setErr] = useState<ShownError | null>(null);
  const [done, setDone] = useState<string | null>(null);
  const who = current()?.identity.sub ?? "";
  const confirm = async () => {
    setBusy(true);
    setErr(null);
    try {
      const r = await api.ledger.closeYear({ requestId, countyCode: county, policyYear: year, closedBy: who });
      setDone(`${year} 年度已结账，期末余额 ¥${r.reconciliation?.closingYuan ?? ""}，结转下年 ${r.reconciliation?.rolledOverYuan ?? ""} 元`);
      setOpen(false);
      onDone();
    } catch (e) {
      setErr(explain(e));
    } finally {
      setBusy(false);
    }
  };
  return (
    <>
      <button
        type="button"
        class="danger"
        onClick={() => {
          setRequestId(crypto.randomUUID());
          setErr(null);
          setOpen(true);
        }}
      >
        年度结账…
      </button>
      {done && <p class="ok">{done}</p>}
      {open && (
        <div class="modal-backdrop">
          <div class="modal" role="dialog" aria-modal="true" aria-labelledby="close-title">
            <h2 id="close-title">确认 {year} 年度结账</h2>
            <p>
              结账将计提保险公司服务费，并把结余结转到 {year + 1} 年度。有待支付的预留或未清的财政补足提示时，服务器会拒绝结账。结账后只有县防贫办可以说明理由重新开账。
            </p>
            <p class="muted">县 {county} · 经办 {who} · 请求编号 <span class="mono">{requestId}</span></p>
            {err && <ErrorBox error={err} />}
            <div class="buttons">
              <button type="button" class="danger" disabled={busy} onClick={confirm}>{err ? "重试结账" : "确认结账"}</button>
              <button type="button" disabled={busy} onClick={() => setOpen(false)}>取消</button>
            </div>
          </div>
        </div>
      )}
    </>
  );
}

function BankMatch({ county, year }: { county: string; year: number }) {
  const [report, setReport] = useState<BankMatchReport | null>(null);
  const [err, setErr] = useState<ShownError | null>(null);
  const [busy, setBusy] = useState(false);
  const upload = async (file: File) => {
    setBusy(true);
    setErr(null);
    setReport(null);
    try {
      const bytes = new Uint8Array(await file.arrayBuffer());
      setReport(await api.ledger.matchBankStatement({ countyCode: county, policyYear: year, statementCsv: bytes }));
    } catch (e) {
      setErr(explain(e));
    } finally {
      setBusy(false);
    }
  };
  return (
    <Section title="银行流水核对">
      <p>选择银行导出的流水 CSV（UTF-8 或 GBK，不超过 4 MiB），与本年度的赔付分录逐笔核对。</p>
      <input
        type="file"
        accept=".csv,text/csv"
        data-testid="bank-statement-file"
        disabled={busy}
        onChange={(e) => {
          const f = (e.target as HTMLInputElement).files?.[0];
          if (f) void upload(f);
        }}
      />
      {busy && <span class="muted"> 正在核对…</span>}
      {err && <ErrorBox error={err} />}
      {report && (
        <div data-testid="bank-match-report">
          <p>
            编码 {report.encoding} · 匹配 {report.matched.length} 笔 · 银行有账无 {report.unmatchedInBank.length} 笔 · 账有银行无 {report.unmatchedInLedger.length} 笔 · 无法识别的行 {report.badLines.length}
          </p>
          {report.matched.length > 0 && (
            <>
              <h3>已匹配</h3>
              <table>
                <thead><tr><th>行</th><th>日期</th><th class="num">金额</th><th>账户</th><th>银行流水号</th><th>分录序号</th><th>案件</th></tr></thead>
                <tbody>
                  {report.matched.map((m) => (
                    <tr>
                      <td>{m.bank?.line}</td><td>{m.bank?.date}</td><td class="num"><Money v={m.bank?.amountYuan ?? ""} /></td><td class="mono">{m.bank?.account}</td>
                      <td class="mono">{m.bank?.reference}</td><td>{m.entry?.sequence.toString()}</td><td class="mono">{shortId(m.entry?.claimId ?? "")}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </>
          )}
          {report.unmatchedInBank.length > 0 && (
            <>
              <h3>银行有、账上无</h3>
              <table>
                <thead><tr><th>行</th><th>日期</th><th class="num">金额</th><th>账户</th><th>银行流水号</th></tr></thead>
                <tbody>
                  {report.unmatchedInBank.map((b) => (
                    <tr><td>{b.line}</td><td>{b.date}</td><td class="num"><Money v={b.amountYuan} /></td><td class="mono">{b.account}</td><td class="mono">{b.reference}</td></tr>
                  ))}
                </tbody>
              </table>
            </>
          )}
          {report.unmatchedInLedger.length > 0 && (
            <>
              <h3>账上有、银行无</h3>
              <EntriesTable entries={report.unmatchedInLedger} />
            </>
          )}
          {report.badLines.length > 0 && (
            <>
              <h3>无法识别的行</h3>
              <table>
                <thead><tr><th>行</th><th>原因</th></tr></thead>
                <tbody>{report.badLines.map((b) => <tr><td>{b.line}</td><td>{b.reason}</td></tr>)}</tbody>
              </table>
            </>
          )}
        </div>
      )}
    </Section>
  );
}

// 总览: the pool, top-up flags, claims by stage, what is overdue. The calls
// go out in parallel; each figure shows its own error.
import { api } from "../api";
import { CLAIM_STATES, DEADLINE_STAGES, keyOf, shortId, zh } from "../format";
import { href, type Route } from "../route";
import { ErrorBox, Money, Section, Show, useAsync } from "../ui";
import type { ServiceInfo } from "../gen/fangpin/v1/service_info_pb";

export function Dashboard({ county, route }: { county: string; route: Route }) {
  const yearParam = Number(route.query.get("year") || 0);
  const [info] = useAsync(() => api.serviceInfo.getServiceInfo({}), []);
  const year = yearParam || (info.status === "ok" ? Number(info.value.today.slice(0, 4)) : 0);
  const [counts] = useAsync(() => api.claims.countClaims({ countyCode: county }), [county]);
  // One listing: what is overdue, and what falls due within 5 working days.
  const [deadlines] = useAsync(() => api.deadlines.listDeadlines({ countyCode: county, withinWorkingDays: 5 }), [county]);
  const [pool] = useAsync(
    () => (year ? api.ledger.getPoolBalance({ countyCode: county, policyYear: year }) : new Promise<never>(() => {})),
    [county, year],
  );
  const [flags] = useAsync(
    () => (year ? api.ledger.listTopUpFlags({ countyCode: county, policyYear: year, includeCleared: false }) : new Promise<never>(() => {})),
    [county, year],
  );
  const c = { county };
  return (
    <div class="page">
      <h1>
        总览 <small>县 {county}{year ? ` · ${year} 年度` : ""}</small>
      </h1>
      {info.status === "error" && <ErrorBox error={info.error} />}
      {info.status === "ok" && <Warnings info={info.value} />}
      <div class="grid">
        <Section title="资金池">
          <Show a={pool}>
            {(p) => (
              <div class="figures">
                <Figure label="入账余额" value={<Money v={p.poolYuan} testid="pool-posted" />} />
                <Figure label="已备案待支付" value={<Money v={p.pendingYuan} testid="pool-pending" />} />
                <Figure label="可用余额" value={<Money v={p.availableYuan} testid="pool-available" />} />
                <Figure label="需财政补足" value={<Money v={p.shortfallYuan} />} />
                <div class="sub-figures">
                  年初结转 <Money v={p.openingYuan} /> · 保费 <Money v={p.premiumsYuan} /> · 财政补足 <Money v={p.topUpsYuan} /> · 已付救助{" "}
                  <Money v={p.reliefPaidYuan} /> · 先行垫付 <Money v={p.advancesYuan} /> · 年度状态 {p.yearState === "closed" ? "已结账" : "未结账"} ·{" "}
                  <a href={href("/finance", { ...c, year: String(year) })}>财务对账 →</a>
                </div>
              </div>
            )}
          </Show>
        </Section>
        <Section title="财政补足提示（未清）">
          <Show a={flags}>
            {(f) =>
              f.flags.length === 0 ? (
                <p class="ok" data-testid="top-up-flags">无未清的补足提示</p>
              ) : (
                <table data-testid="top-up-flags">
                  <thead>
                    <tr><th>案件</th><th>缺口</th><th>提出时间</th></tr>
                  </thead>
                  <tbody>
                    {f.flags.map((x) => (
                      <tr>
                        <td><a href={href("/claims/" + x.claimId)}>{shortId(x.claimId)}</a></td>
                        <td class="num"><Money v={x.shortfallYuan} /></td>
                        <td>{x.raisedAt}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              )
            }
          </Show>
        </Section>
        <Section title="案件按环节">
          <Show a={counts}>
            {(r) => (
              <table data-testid="claims-by-state">
                <tbody>
                  {r.counts.map((x) => (
                    <tr>
                      <td><a href={href("/claims", { ...c, state: keyOf(CLAIM_STATES, x.state) })}>{zh(CLAIM_STATES, x.state)}</a></td>
                      <td class="num">{x.claims.toString()}</td>
                    </tr>
                  ))}
                  <tr class="total">
                    <td><a href={href("/claims", c)}>合计</a></td>
                    <td class="num">{r.total.toString()}</td>
                  </tr>
                </tbody>
              </table>
            )}
          </Show>
        </Section>
        <Section title="限时办结">
          <Show a={deadlines}>
            {(d) => {
              const overdue = d.deadlines.filter((x) => x.overdue);
              const byStage = DEADLINE_STAGES.map((s) => ({
                s,
                over: overdue.filter((x) => x.stage === s.value).length,
                soon: d.deadlines.filter((x) => !x.overdue && x.stage === s.value).length,
              }));
              return (
                <>
                  <div class="figures">
                    <Figure label="已超期" value={<span class={d.overdue ? "neg" : ""} data-testid="overdue-total">{d.overdue}</span>} />
                    <Figure label="5 个工作日内到期" value={<span data-testid="due-soon-total">{d.dueSoon}</span>} />
                  </div>
                  <p class="muted">截至 {d.asOf}{d.truncated ? "（在办案件过多，仅统计部分）" : ""}</p>
                  <table data-testid="overdue-by-stage">
                    <thead><tr><th>环节</th><th>已超期</th><th>即将到期</th></tr></thead>
                    <tbody>
                      {byStage.map(({ s, over, soon }) => (
                        <tr><td>{s.zh}</td><td class={"num" + (over ? " neg" : "")}>{over}</td><td class="num">{soon}</td></tr>
                      ))}
                    </tbody>
                  </table>
                  {overdue.length > 0 && (
                    <details>
                      <summary>超期案件（{overdue.length}）</summary>
                      <table>
                        <thead><tr><th>环节</th><th>案件</th><th>村</th><th>到期日</th><th>超期工作日</th><th>责任方</th></tr></thead>
                        <tbody>
                          {overdue.slice(0, 100).map((x) => (
                            <tr>
                              <td>{zh(DEADLINE_STAGES, x.stage)}</td>
                              <td>{x.claimId ? <a href={href("/claims/" + x.claimId)}>{shortId(x.claimId)}</a> : x.runId}</td>
                              <td>{x.villageCode}</td>
                              <td>{x.dueOn}{x.provisional ? "（暂定）" : ""}</td>
                              <td class="num">{x.workingDaysOver}</td>
                              <td>{x.responsible || x.responsibleRole}</td>
                            </tr>
                          ))}
                        </tbody>
                      </table>
                    </details>
                  )}
                </>
              );
            }}
          </Show>
        </Section>
      </div>
      {info.status === "ok" && (
        <p class="muted footer">
          fangpind {info.value.version} · 业务日期 {info.value.today} · 工作日历覆盖 {info.value.calendarFirstYear}–{info.value.calendarLastYear}
        </p>
      )}
    </div>
  );
}

function Warnings({ info }: { info: ServiceInfo }) {
  return (
    <>
      {info.calendarWarning && <div class="warn" data-testid="calendar-warning">工作日历：{info.calendarWarning}</div>}
      {info.storageWarning && <div class="warn" data-testid="storage-warning">存储：{info.storageWarning}</div>}
    </>
  );
}

function Figure({ label, value }: { label: string; value: preact.ComponentChildren }) {
  return (
    <div class="figure">
      <div class="label">{label}</div>
      <div class="value">{value}</div>
    </div>
  );
}

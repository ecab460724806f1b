// 案件详情: the claim's whole story. Every section makes its own call and
// shows its own error.
import { useState } from "preact/hooks";
import { api, explain, isNotFound, type ShownError } from "../api";
import { save } from "../download";
import {
  CHANNELS, CIVIL_STATUSES, CLAIM_STATES, CROSS_CHECK_RESULTS, HOUSEHOLD_TYPES, MONITORING_STATUSES, OBJECTION_OUTCOMES,
  RELIEF_KINDS, REVIEW_STEPS, TOWNSHIP_DECISIONS, VISIT_MODES, fen, rate, ts, yesNo, zh,
} from "../format";
import { ClaimState, type Assessment, type Claim } from "../gen/fangpin/v1/common_pb";
import { href } from "../route";
import { ErrorBox, KV, Money, Section, Show, useAsync, type Async } from "../ui";
import type { ClaimHistoryResponse } from "../gen/fangpin/v1/claim_pb";

export function ClaimPage({ claimId }: { claimId: string }) {
  const [claim] = useAsync(async () => (await api.claims.getClaim({ claimId })).claim!, [claimId]);
  const [history] = useAsync(() => api.claims.getClaimHistory({ claimId }), [claimId]);
  const [objections] = useAsync(() => api.publicity.listObjections({ claimId }), [claimId]);
  const [reviews] = useAsync(() => api.publicity.listReviews({ claimId }), [claimId]);
  const [checks] = useAsync(() => api.payout.listCrossChecks({ claimId }), [claimId]);
  const [evidence] = useAsync(() => api.evidence.listEvidence({ claimId }), [claimId]);
  const [followUp] = useAsync(async () => {
    try {
      return (await api.followUp.getFollowUp({ claimId })).followUp ?? null;
    } catch (e) {
      if (isNotFound(e)) return null; // no case opened
      throw e;
    }
  }, [claimId]);
  return (
    <div class="page">
      <h1>
        案件详情 <small class="mono">{claimId}</small>
      </h1>
      <p><a href={href("/claims")}>← 返回案件列表</a></p>
      <Show a={claim} testid="claim-error">
        {(c) => (
          <>
            <Section title="案件">
              <KV
                rows={[
                  ["状态", <strong data-testid="claim-state">{zh(CLAIM_STATES, c.state)}</strong>],
                  ["县 / 村", `${c.countyCode} / ${c.villageCode}`],
                  ["户编号", <span class="mono">{c.householdId}</span>],
                  ["类型", zh(RELIEF_KINDS, c.reliefKind)],
                  ["渠道", zh(CHANNELS, c.channel)],
                  ["事件日期", c.eventDate],
                  ["事件凭据", c.eventReference],
                  ["申报费用", <Money v={c.claimedCostYuan} />],
                  ["情况说明", c.description],
                  ["受理日期", c.intakeDate],
                  ["查勘期限", c.surveyDeadline + (c.surveyDeadlineProvisional ? "（暂定：日历未覆盖，按周一至周五计）" : "")],
                  ["查勘员", c.surveyor],
                  ["政策年度 / 版本", `${c.policyYear} 年度 · 第 ${c.policyVersion} 版`],
                  ["查勘建议理由", c.recommendationReason],
                ]}
              />
            </Section>
            <Section title="核定与计算过程">
              {c.assessment ? <Derivation claim={c} a={c.assessment} /> : <p class="muted">尚无查勘结果</p>}
            </Section>
            <Section title="公示">
              <KV
                rows={[
                  ["公示开始", c.publicityOpensOn],
                  ["异议截止日", c.publicityLastObjectionDay],
                  ["异议数", String(c.objections)],
                ]}
              />
              <h3>异议</h3>
              <Show a={objections}>
                {(r) =>
                  r.objections.length === 0 ? (
                    <p class="muted">无异议</p>
                  ) : (
                    <table>
                      <thead><tr><th>异议人</th><th>理由</th><th>提出时间</th><th>处理结果</th></tr></thead>
                      <tbody>
                        {r.objections.map((o) => (
                          <tr><td>{o.objector}</td><td>{o.reason}</td><td>{ts(o.raisedAt)}</td><td>{zh(OBJECTION_OUTCOMES, o.outcome)}</td></tr>
                        ))}
                      </tbody>
                    </table>
                  )
                }
              </Show>
            </Section>
            <Section title="评议与审核">
              <Show a={reviews}>
                {(r) => (
                  <>
                    <p>
                      办理程序：{r.steps.map((s) => zh(REVIEW_STEPS, s)).join(" → ") || "—"}
                      {r.nextStep ? ` · 待办：${zh(REVIEW_STEPS, r.nextStep)}` : ""}
                    </p>
                    {r.deliberations.length > 0 && (
                      <table>
                        <thead><tr><th>村级评议</th><th>日期</th><th>应到/实到/同意</th><th>结果</th><th>会议记录</th><th>记录人</th><th>查勘轮次</th></tr></thead>
                        <tbody>
                          {r.deliberations.map((d) => (
                            <tr>
                              <td>#{d.seq}</td><td>{d.heldOn}</td><td>{d.members}/{d.present}/{d.inFavour}</td>
                              <td>{d.agreed ? "通过" : "未通过"}</td><td class="mono">{d.minutesEvidenceId}</td><td>{d.recordedBy}</td><td>{d.findingsSeq}</td>
                            </tr>
                          ))}
                        </tbody>
                      </table>
                    )}
                    {r.townshipReviews.length > 0 && (
                      <table>
                        <thead><tr><th>乡级审核</th><th>决定</th><th>理由</th><th>审核人</th><th>时间</th><th>查勘轮次</th></tr></thead>
                        <tbody>
                          {r.townshipReviews.map((t) => (
                            <tr>
                              <td>#{t.seq}</td><td>{zh(TOWNSHIP_DECISIONS, t.decision)}</td><td>{t.reason}</td><td>{t.reviewedBy}</td><td>{ts(t.reviewedAt)}</td><td>{t.findingsSeq}</td>
                            </tr>
                          ))}
                        </tbody>
                      </table>
                    )}
                    {r.deliberations.length === 0 && r.townshipReviews.length === 0 && <p class="muted">无评议或审核记录</p>}
                  </>
                )}
              </Show>
            </Section>
            <Section title="部门信息比对">
              <Show a={checks}>
                {(r) => (
                  <>
                    <p>
                      可备案：{yesNo(r.filingAllowed)}
                      {r.missing.length > 0 && ` · 缺少：${r.missing.join("、")}`}
                      {r.hits.length > 0 && ` · 比对发现：${r.hits.join("、")}`}
                    </p>
                    {r.records.length > 0 && (
                      <table>
                        <thead><tr><th>#</th><th>比对项</th><th>结果</th><th>说明</th><th>比对人</th><th>时间</th><th>查勘轮次</th></tr></thead>
                        <tbody>
                          {r.records.map((x) => (
                            <tr>
                              <td>{x.seq}</td><td>{x.checkName || x.check}</td><td>{zh(CROSS_CHECK_RESULTS, x.result)}</td><td>{x.details}</td><td>{x.checkedBy}</td><td>{ts(x.checkedAt)}</td><td>{x.findingsSeq}</td>
                            </tr>
                          ))}
                        </tbody>
                      </table>
                    )}
                  </>
                )}
              </Show>
            </Section>
            <Section title="备案与赔付">
              <KV
                rows={[
                  ["备案", <Step a={history} state={ClaimState.FILED} none="未备案" />],
                  ["赔付", <Step a={history} state={ClaimState.PAID} none="未赔付" />],
                  ["备案预留", <Money v={c.reservedYuan} />],
                  ["先行垫付", <Money v={c.advancePaidYuan} />],
                  ["实付金额", <Money v={c.payoutYuan} testid="payout-amount" />],
                  ["收款账户（脱敏）", <span class="mono" data-testid="paid-account">{c.paidAccountMasked}</span>],
                  ["银行流水号", <span class="mono" data-testid="bank-reference">{c.paidBankReference}</span>],
                  ["银行退回次数", String(c.payoutReturns)],
                ]}
              />
            </Section>
          </>
        )}
      </Show>
      <Section title="办理记录">
        <Show a={history}>
          {(h) => (
            <table data-testid="history">
              <thead><tr><th>时间</th><th>状态变化</th><th>事件</th><th>经办</th><th>理由</th></tr></thead>
              <tbody>
                {h.transitions.map((t) => (
                  <tr>
                    <td>{ts(t.at)}</td>
                    <td>{t.fromState ? zh(CLAIM_STATES, t.fromState) : "（新案）"} → {zh(CLAIM_STATES, t.toState)}</td>
                    <td class="mono">{t.event}</td>
                    <td>{t.actor}</td>
                    <td>{t.reason}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </Show>
      </Section>
      <Section title="证据材料">
        <Show a={evidence}>
          {(r) =>
            r.evidence.length === 0 ? (
              <p class="muted">无证据材料</p>
            ) : (
              <table>
                <thead><tr><th>文件名</th><th>类型</th><th>大小（字节）</th><th>说明</th><th>上传人</th><th>上传时间</th><th>SHA-256</th><th></th></tr></thead>
                <tbody>
                  {r.evidence.map((x) => (
                    <tr>
                      <td>{x.fileName}</td><td>{x.mediaType}</td><td class="num">{x.sizeBytes.toString()}</td><td>{x.description}</td><td>{x.uploadedBy}</td><td>{ts(x.uploadedAt)}</td>
                      <td class="mono hash" title={x.sha256}>{x.sha256.slice(0, 16)}…</td>
                      <td><EvidenceDownload evidenceId={x.evidenceId} /></td>
                    </tr>
                  ))}
                </tbody>
              </table>
            )
          }
        </Show>
      </Section>
      <Section title="后续帮扶">
        <Show a={followUp}>
          {(f) =>
            !f || f.status === 1 ? (
              <p class="muted">未开展后续帮扶</p>
            ) : (
              <>
                <KV
                  rows={[
                    ["状态", zh(MONITORING_STATUSES, f.status)],
                    ["帮扶责任人", f.contacts.map((p) => `${p.name}（${p.workUnit}，${p.phoneMasked || p.phone}）`).join("；")],
                    ["走访周期", f.visitEveryWorkingDays ? `${f.visitEveryWorkingDays} 个工作日` : "未设定"],
                    ["下次走访", f.nextVisitDue ? `${f.nextVisitDue}${f.visitOverdue ? `（已超期 ${f.workingDaysOver} 个工作日）` : ""}${f.dueProvisional ? "（暂定）" : ""}` : ""],
                  ]}
                />
                {f.visits.length > 0 && (
                  <table>
                    <thead><tr><th>#</th><th>日期</th><th>方式</th><th>责任人</th><th>情况</th><th>风险仍在</th><th>应访日</th><th>迟延工作日</th></tr></thead>
                    <tbody>
                      {f.visits.map((v) => (
                        <tr>
                          <td>{v.seq}</td><td>{v.visitedOn}</td><td>{zh(VISIT_MODES, v.mode)}</td><td>{v.contactName}</td><td>{v.findings}</td><td>{yesNo(v.riskRemains)}</td><td>{v.dueOn}</td><td class="num">{v.workingDaysLate}</td>
                        </tr>
                      ))}
                    </tbody>
                  </table>
                )}
              </>
            )
          }
        </Show>
      </Section>
    </div>
  );
}

function cmp(s: string): string {
  switch (s) {
    case "below": return "低于";
    case "at_least": return "不低于";
    case "above": return "高于";
    default: return s;
  }
}

/** Every step of the computation, so an auditor can recompute the amount. */
function Derivation({ claim, a }: { claim: Claim; a: Assessment }) {
  const hasComputation = a.bands.length > 0 || a.bandedExactFen !== "" || a.rounding !== "";
  return (
    <div data-testid="derivation" class="derivation">
      <KV
        rows={[
          ["核定救助金额", <strong><Money v={a.amountYuan} testid="assessed-amount" /></strong>],
          ["是否符合条件", yesNo(a.eligible)],
          ["政策", `${claim.policyYear} 年度 · 第 ${a.policyVersion || claim.policyVersion} 版`],
          ["查勘轮次", a.findingsSeq ? `第 ${a.findingsSeq} 次` : ""],
          ["户类型", a.householdType ? zh(HOUSEHOLD_TYPES, a.householdType) : ""],
          ["类型", a.reliefKind ? zh(RELIEF_KINDS, a.reliefKind) : zh(RELIEF_KINDS, claim.reliefKind)],
          ["核实人均收入", <Money v={a.verifiedIncomePerCapitaYuan} />],
          ["收入线", <>{<Money v={a.incomeLimitYuan} />}{a.incomeComparison && ` （收入须${cmp(a.incomeComparison)}收入线：${a.incomeMet ? "满足" : "不满足"}）`}</>],
          ["核实费用", <Money v={a.verifiedCostYuan} />],
          ["起付线", <>{<Money v={a.thresholdYuan} />}{a.comparison && ` （费用须${cmp(a.comparison)}起付线：${a.expenditureMet ? "满足" : "不满足"}）`}</>],
          ["超出起付线部分", <Money v={a.costAboveThresholdYuan} />],
          ["查勘员", a.surveyedBy],
          ["查勘说明", a.notes],
          ["证据", a.evidenceRefs.join("、")],
        ]}
      />
      {a.status && (
        <div class="sub-block">
          <h3>救助身份</h3>
          <KV
            rows={[
              ["身份", zh(CIVIL_STATUSES, a.status.status)],
              ["核实日期", a.status.verifiedOn],
              ["来源导入", <span class="mono">{a.status.importId}</span>],
              ["适用身份条款", yesNo(a.status.termApplied)],
              ["条款起付线", <Money v={a.status.thresholdYuan} />],
              ["替换分段", yesNo(a.status.bandsReplaced)],
              ["免收入条件", yesNo(a.status.incomeConditionWaived)],
            ]}
          />
        </div>
      )}
      {a.incomeDrop && (
        <div class="sub-block">
          <h3>收入下降测算</h3>
          <KV
            rows={[
              ["基准方式", a.incomeDrop.baseline === "last_verified" ? "上次核实收入" : a.incomeDrop.baseline === "average_of_years" ? "往年平均" : a.incomeDrop.baseline],
              ["往年人均收入（近→远）", a.incomeDrop.priorIncomesPerCapitaYuan.join("、")],
              ["基准收入", <Money v={a.incomeDrop.baselineIncomeYuan} />],
              ["新收入", <Money v={a.incomeDrop.newIncomeYuan} />],
              ["下降额", <Money v={a.incomeDrop.dropYuan} />],
              ["下降比例", a.incomeDrop.dropShare],
              ["最低下降比例 / 金额", `${a.incomeDrop.minDropShare || "—"} / ${a.incomeDrop.minDropAmountYuan || "—"}`],
              ["是否达标", yesNo(a.incomeDrop.qualified)],
              ["人均缺口", <Money v={a.incomeDrop.gapPerCapitaYuan} />],
              ["缺口口径", a.incomeDrop.gapBasis === "household" ? `全户（× ${a.incomeDrop.members} 人）` : a.incomeDrop.gapBasis === "per_capita" ? "人均" : a.incomeDrop.gapBasis],
              ["救助基数", <Money v={a.incomeDrop.reliefBaseYuan} />],
              ["收入证据", a.incomeDrop.incomeEvidenceRefs.join("、")],
            ]}
          />
        </div>
      )}
      {hasComputation ? (
        <div class="sub-block">
          <h3>分段计算</h3>
          <table class="bands" data-testid="bands">
            <thead><tr><th>#</th><th class="num">区间下限（元）</th><th class="num">区间上限（元）</th><th class="num">比例</th><th class="num">本段金额（分，精确）</th></tr></thead>
            <tbody>
              {a.bands.map((b, i) => (
                <tr>
                  <td>{i + 1}</td>
                  <td class="num mono">{b.fromYuan}</td>
                  <td class="num mono">{b.toYuan || "以上"}</td>
                  <td class="num mono">{b.rate}（{rate(b.rate)}）</td>
                  <td class="num mono">{b.shareFen}</td>
                </tr>
              ))}
            </tbody>
          </table>
          <KV
            rows={[
              ["各段合计（分，精确）", <span class="mono">{fen(a.bandedExactFen)}</span>],
              ["舍入规则", a.rounding === "half_away_from_zero_once_on_the_sum_of_exact_band_shares" ? "对各段精确金额之和一次性四舍五入到分" : a.rounding],
              ["分段结果", <Money v={a.bandedYuan} />],
              ["规则封顶", <Money v={a.ruleCapYuan} />],
              ["单案封顶", <Money v={a.caseCapYuan} />],
              ["受封顶限制", a.cappedAtYuan ? <Money v={a.cappedAtYuan} /> : "否"],
              ["核定救助金额", <Money v={a.amountYuan} />],
            ]}
          />
        </div>
      ) : (
        <p class="muted">此次核定早于计算过程的记录，只有下列说明。</p>
      )}
      <h3>计算说明</h3>
      <ol class="explanation" data-testid="explanation">
        {a.explanation.map((line) => (
          <li class="mono">{line}</li>
        ))}
      </ol>
    </div>
  );
}

/** Downloads one evidence file (a server stream: the metadata, then the bytes). */
function EvidenceDownload({ evidenceId }: { evidenceId: string }) {
  const [busy, setBusy] = useState(false);
  const [err, setErr] = useState<ShownError | null>(null);
  const run = async () => {
    setBusy(true);
    setErr(null);
    try {
      const parts: Uint8Array[] = [];
      let name = evidenceId;
      let type = "application/octet-stream";
      for await (const m of api.evidence.downloadEvidence({ evidenceId })) {
        if (m.part.case === "evidence") {
          name = m.part.value.fileName || name;
          type = m.part.value.contentType || type;
        } else if (m.part.case === "data") {
          parts.push(m.part.value);
        }
      }
      save(new Blob(parts as BlobPart[], { type }), name);
    } catch (e) {
      setErr(explain(e));
    } finally {
      setBusy(false);
    }
  };
  return (
    <>
      <button type="button" disabled={busy} onClick={run}>下载</button>
      {err && <ErrorBox error={err} />}
    </>
  );
}

/** When the claim last reached `state`, who did it and why, from its history. */
function Step({ a, state, none }: { a: Async<ClaimHistoryResponse>; state: ClaimState; none: string }) {
  if (a.status === "loading") return <span class="muted">…</span>;
  if (a.status === "error") return <span class="neg">{a.error.code || a.error.title}：{a.error.message}</span>;
  const t = [...a.value.transitions].reverse().find((x) => x.toState === state);
  if (!t) return <>{none}</>;
  return <>{`${ts(t.at)} · ${t.actor}${t.reason ? ` · ${t.reason}` : ""}`}</>;
}

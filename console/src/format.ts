// Display helpers: Chinese names of every enum value, money as the server
// sent it (never through floating point), dates.
import { ClaimState, Channel, ReliefKind, HouseholdType, CivilStatus, ReviewStep } from "./gen/fangpin/v1/common_pb";
import { DeadlineStage } from "./gen/fangpin/v1/deadlines_pb";
import { ObjectionOutcome, TownshipDecision } from "./gen/fangpin/v1/publicity_pb";
import { CrossCheckResult } from "./gen/fangpin/v1/payout_pb";
import { MonitoringStatus, VisitMode } from "./gen/fangpin/v1/follow_up_pb";

/** One enum value: its number, the key used in URLs, its Chinese name. */
export interface EnumName { value: number; key: string; zh: string }

function table(rows: [number, string, string][]): EnumName[] {
  return rows.map(([value, key, zh]) => ({ value, key, zh }));
}

export const CLAIM_STATES = table([
  [ClaimState.RECEIVED, "received", "已受理"],
  [ClaimState.UNDER_SURVEY, "under_survey", "查勘中"],
  [ClaimState.RECOMMENDED, "recommended", "查勘已建议"],
  [ClaimState.DELIBERATED, "deliberated", "村级评议通过"],
  [ClaimState.TOWNSHIP_APPROVED, "township_approved", "乡级审核通过"],
  [ClaimState.IN_PUBLICITY, "in_publicity", "公示中"],
  [ClaimState.PUBLICITY_PASSED, "publicity_passed", "公示通过"],
  [ClaimState.FILED, "filed", "已备案"],
  [ClaimState.PAID, "paid", "已赔付"],
  [ClaimState.PAYOUT_FAILED, "payout_failed", "赔付失败（可重试）"],
  [ClaimState.REJECTED, "rejected", "不予救助"],
  [ClaimState.DISQUALIFIED, "disqualified", "比对不符"],
]);

export const RELIEF_KINDS = table([
  [ReliefKind.ILLNESS, "illness", "因病"],
  [ReliefKind.SCHOOLING, "schooling", "因学"],
  [ReliefKind.ACCIDENT, "accident", "因意外"],
  [ReliefKind.INDUSTRY, "industry", "因产业风险"],
  [ReliefKind.SCHOOL_ENTRY, "school_entry", "升学"],
  [ReliefKind.INCOME_DROP, "income_drop", "收入下降"],
]);

export const CHANNELS = table([
  [Channel.VILLAGE_APPLICATION, "village_application", "村级申请"],
  [Channel.DEPARTMENT_REFERRAL, "department_referral", "部门数据比对推送"],
  [Channel.EMERGENCY, "emergency", "遇困即扶"],
]);

export const DEADLINE_STAGES = table([
  [DeadlineStage.SURVEY, "survey", "查勘"],
  [DeadlineStage.FILING, "filing", "备案"],
  [DeadlineStage.PAYOUT, "payout", "赔付"],
  [DeadlineStage.FOLLOW_UP_VISIT, "follow_up_visit", "帮扶走访"],
  [DeadlineStage.MONITORING_LIST, "monitoring_list", "监测名单核实"],
]);

export const HOUSEHOLD_TYPES = table([
  [HouseholdType.UNSTABLE_ESCAPED, "unstable_escaped", "脱贫不稳定户"],
  [HouseholdType.MARGINAL, "marginal", "边缘易致贫户"],
  [HouseholdType.SUDDEN_SEVERE_DIFFICULTY, "sudden_severe_difficulty", "突发严重困难户"],
]);

export const CIVIL_STATUSES = table([
  [CivilStatus.NONE, "none", "无"],
  [CivilStatus.DIBAO, "dibao", "低保"],
  [CivilStatus.TEKUN, "tekun", "特困"],
  [CivilStatus.DISABILITY, "disability", "残疾"],
]);

export const REVIEW_STEPS = table([
  [ReviewStep.VILLAGE_DELIBERATION, "village_deliberation", "村级评议"],
  [ReviewStep.TOWNSHIP_REVIEW, "township_review", "乡级审核"],
  [ReviewStep.PUBLICITY, "publicity", "公示"],
  [ReviewStep.FILING, "filing", "备案"],
]);

export const OBJECTION_OUTCOMES = table([
  [ObjectionOutcome.PENDING, "pending", "处理中（重新查勘）"],
  [ObjectionOutcome.UPHELD, "upheld", "异议成立"],
  [ObjectionOutcome.NOT_UPHELD, "not_upheld", "异议不成立"],
]);

export const TOWNSHIP_DECISIONS = table([
  [TownshipDecision.APPROVED, "approved", "审核通过"],
  [TownshipDecision.SENT_BACK, "sent_back", "退回查勘"],
]);

export const CROSS_CHECK_RESULTS = table([
  [CrossCheckResult.CLEAR, "clear", "无异常"],
  [CrossCheckResult.HIT, "hit", "比对发现"],
  [CrossCheckResult.NOT_POSSIBLE, "not_possible", "无法比对"],
]);

export const MONITORING_STATUSES = table([
  [MonitoringStatus.NONE, "none", "未开案"],
  [MonitoringStatus.MONITORING, "monitoring", "帮扶中"],
  [MonitoringStatus.CLEARED, "cleared", "解困销号"],
]);

export const VISIT_MODES = table([
  [VisitMode.HOME_VISIT, "home_visit", "入户走访"],
  [VisitMode.CALL, "call", "电话回访"],
]);

/** The Chinese name of an enum value; unknown or unset values say so. */
export function zh(names: EnumName[], value: number): string {
  if (value === 0) return "未指定";
  return names.find((n) => n.value === value)?.zh ?? `未知(${value})`;
}

export function byKey(names: EnumName[], key: string | null | undefined): number {
  if (!key) return 0;
  return names.find((n) => n.key === key)?.value ?? 0;
}

export function keyOf(names: EnumName[], value: number): string {
  return names.find((n) => n.value === value)?.key ?? "";
}

export const ROLES: Record<string, string> = {
  surveyor: "查勘员",
  village_committee: "村委会",
  township: "乡镇",
  county_office: "县防贫办",
  department_feeder: "部门",
  finance_bureau: "财政局",
  auditor: "审计",
};

export function roleZh(role: string): string {
  return ROLES[role] ?? (role ? `未知角色(${role})` : "未知角色");
}

const YUAN = /^(-?)(\d+)(?:\.(\d{1,2}))?$/;

/**
 * A decimal yuan string as the server sent it, with ¥ and thousands
 * separators: "1800.00" -> "¥1,800.00". The digits are never turned into
 * a floating point number. A string that is not a decimal is shown as is.
 */
export function yuan(s: string | undefined | null): string {
  if (s === undefined || s === null || s === "") return "—";
  const m = YUAN.exec(s);
  if (!m) return s;
  const int = m[2].replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  return `${m[1]}¥${int}${m[3] !== undefined ? "." + m[3] : ""}`;
}

/** Yuan to integer fen, exactly, through BigInt ("1800.5" -> 180050n). */
export function yuanToFen(s: string): bigint | null {
  const m = YUAN.exec(s);
  if (!m) return null;
  const fen = BigInt(m[2]) * 100n + BigInt((m[3] ?? "").padEnd(2, "0") || "0");
  return m[1] === "-" ? -fen : fen;
}

/** Integer fen back to a yuan string with two decimals. */
export function fenToYuan(fen: bigint): string {
  const neg = fen < 0n;
  const a = neg ? -fen : fen;
  return `${neg ? "-" : ""}${a / 100n}.${(a % 100n).toString().padStart(2, "0")}`;
}

/** An exact fen string with fractions ("1950.5" fen) shown with its unit. */
export function fen(s: string): string {
  return s ? `${s} 分` : "—";
}

/** A rate as a percentage without floating point: "0.65" -> "65%". */
export function rate(s: string): string {
  const m = /^(\d+)(?:\.(\d+))?$/.exec(s);
  if (!m) return s || "—";
  const frac = (m[2] ?? "").padEnd(2, "0");
  const whole = (BigInt(m[1]) * 100n + BigInt(frac.slice(0, 2))).toString();
  const rest = frac.slice(2).replace(/0+$/, "");
  return `${whole}${rest ? "." + rest : ""}%`;
}

/** An RFC 3339 timestamp shown in China time (UTC+8), to the second. */
export function ts(s: string): string {
  if (!s) return "—";
  const d = new Date(s);
  if (Number.isNaN(d.getTime())) return s;
  const bj = new Date(d.getTime() + 8 * 3600 * 1000);
  const p = (n: number) => String(n).padStart(2, "0");
  return `${bj.getUTCFullYear()}-${p(bj.getUTCMonth() + 1)}-${p(bj.getUTCDate())} ${p(bj.getUTCHours())}:${p(bj.getUTCMinutes())}:${p(bj.getUTCSeconds())}`;
}

export function date(s: string): string {
  return s || "—";
}

/** A claim id in short: its head and its tail (UUIDv7 heads are only time). */
export function shortId(id: string): string {
  return id.length > 12 ? `${id.slice(0, 4)}…${id.slice(-6)}` : id;
}

export function yesNo(b: boolean): string {
  return b ? "是" : "否";
}

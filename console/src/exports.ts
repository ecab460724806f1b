// The rows of the finance downloads, the same for CSV and XLSX: the
// reconciliation as the CLI exports it (summary, by relief kind, by
// township, each breakdown with its total summed in integer fen) and the
// ledger statement, one row per entry.
import type { Cell } from "./download";
import { fenToYuan, yuanToFen } from "./format";
import type { LedgerEntry } from "./gen/fangpin/v1/common_pb";
import type { Reconciliation, ReconciliationLine } from "./gen/fangpin/v1/ledger_pb";

export const STATEMENT_HEADER = [
  "县", "年度", "序号", "分录号", "记账时间", "类型", "借方科目", "贷方科目", "金额（元）", "金额（分）", "案件编号", "摘要/凭证", "冲销分录",
];

export function statementRows(entries: LedgerEntry[]): Cell[][] {
  return [
    STATEMENT_HEADER,
    ...entries.map((e): Cell[] => [
      e.countyCode,
      String(e.policyYear),
      e.sequence.toString(),
      e.entryId,
      e.postedAt,
      e.kind,
      e.debitAccount,
      e.creditAccount,
      e.amountYuan,
      yuanToFen(e.amountYuan),
      e.claimId,
      e.reference,
      e.reversesEntryId,
    ]),
  ];
}

function breakdown(title: string, keyHeader: string, lines: ReconciliationLine[]): Cell[][] {
  let claims = 0n;
  let relief = 0n;
  let advances = 0n;
  const rows: Cell[][] = [[title], [keyHeader, "件数 Claims", "防贫救助（元） Relief (yuan)", "先行救助（元） Advances (yuan)"]];
  for (const l of lines) {
    claims += l.claims;
    relief += yuanToFen(l.reliefYuan) ?? 0n;
    advances += yuanToFen(l.advancesYuan) ?? 0n;
    rows.push([l.key, l.claims.toString(), l.reliefYuan, l.advancesYuan]);
  }
  rows.push(["合计 Total", claims.toString(), fenToYuan(relief), fenToYuan(advances)]);
  return rows;
}

export function reconciliationRows(r: Reconciliation): Cell[][] {
  const line = (zh: string, en: string, v: string): Cell[] => [zh, en, v];
  return [
    ["汇总 Summary"],
    ["项目", "Item", "金额（元） Amount (yuan)"],
    line("县", "County", r.countyCode),
    line("年度", "Policy year", String(r.policyYear)),
    line("年度状态", "Year state", r.yearState),
    line("上年结转", "Opening", r.openingYuan),
    line("保费收入", "Premiums", r.premiumsYuan),
    line("财政补齐", "Top-ups", r.topUpsYuan),
    line("防贫救助", "Relief", r.reliefYuan),
    line("先行救助", "Advances", r.advancesYuan),
    line("服务费", "Service fee", r.serviceFeeYuan),
    line("期末余额", "Closing", r.closingYuan),
    line("结转下年", "Rolled over", r.rolledOverYuan),
    line("资金池余额", "Pool balance", r.poolYuan),
    line("已预留待付", "Pending", r.pendingYuan),
    line("待追回垫付", "Receivables open", r.receivablesOpenYuan),
    line("已追回垫付", "Receivables recovered", r.receivablesRecoveredYuan),
    line("已核销垫付", "Receivables written off", r.receivablesWrittenOffYuan),
    line("分录数", "Entries", r.entries.toString()),
    line("账实相符", "Ties", r.ties ? "是 yes" : "否 no"),
    [],
    ...breakdown("按救助类型 By relief kind", "救助类型 Relief kind", r.byReliefKind),
    [],
    ...breakdown("按乡镇 By township", "乡镇代码 Township", r.byTownship),
  ];
}

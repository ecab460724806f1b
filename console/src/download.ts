// Files the browser saves: CSV by hand (UTF-8 with BOM, so Excel reads the
// Chinese right), XLSX through write-excel-file, JSON Lines.
import writeXlsxFile from "write-excel-file/browser";
import type { SheetData } from "write-excel-file/browser";

export function save(blob: Blob, fileName: string) {
  const url = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = url;
  a.download = fileName;
  a.style.display = "none";
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

/** A cell of a table to export: text stays text; a bigint is an exact integer. */
export type Cell = string | bigint | number | null;

function csvField(v: Cell): string {
  const s = v === null ? "" : String(v);
  return /[",\r\n]/.test(s) || /^\s|\s$/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function csv(rows: Cell[][]): Blob {
  const text = "\uFEFF" + rows.map((r) => r.map(csvField).join(",")).join("\r\n") + "\r\n";
  return new Blob([text], { type: "text/csv;charset=utf-8" });
}

/**
 * Rows to an XLSX sheet. Strings (yuan amounts among them) are text cells,
 * so nothing passes through floating point; a bigint (fen) becomes a number
 * cell, exact below 2^53.
 */
export async function xlsx(rows: Cell[][], sheet: string): Promise<Blob> {
  const data: SheetData = rows.map((r, i) =>
    r.map((v) => {
      if (v === null) return null;
      if (typeof v === "bigint") return { type: Number, value: Number(v) };
      if (typeof v === "number") return { type: Number, value: v };
      return i === 0 ? { type: String, value: v, fontWeight: "bold" as const } : { type: String, value: v };
    }),
  );
  return writeXlsxFile(data, { sheet, stickyRowsCount: 1 }).toBlob();
}

export function jsonl(objects: unknown[]): Blob {
  return new Blob([objects.map((o) => JSON.stringify(o)).join("\n") + (objects.length ? "\n" : "")], {
    type: "application/x-ndjson",
  });
}

#!/usr/bin/env python3
"""The illness screening of the `screening` benchmark, done by DuckDB.

Reads the benchmark's enrolment (persons.csv: id_number, household_id,
household_type) and medical settlements (medical.csv, the medical feed of
docs/feeds.md), adds up the in-patient out-of-pocket costs of each household
over the months FIRST..LAST (both included), and writes the households whose
total reaches the threshold of their type to OUT as `household_id,cost_fen`
lines, sorted by household id.

    python3 tests/benches/screening_duckdb.py persons.csv medical.csv 2024-01 2024-12 \
        [--out candidates.csv] [--threshold-fen unstable_escaped=500000 ...]

The default thresholds are those of Policy::example (5,000.00 yuan for
unstable_escaped, 20,000.00 for marginal, compared "at least"); the benchmark
passes the ones it registered. The last line on stdout is a JSON summary whose
`query_seconds` covers reading both files, the query and fetching its result,
but not starting the interpreter or importing duckdb, so that the benchmark can
report both that and the process's wall time.
"""

import argparse
import json
import sys
import time

import duckdb

DEFAULT_THRESHOLDS_FEN = {"unstable_escaped": 500_000, "marginal": 2_000_000}


def month_start(text):
    """'2024-01' -> '2024-01-01', checking the form."""
    year, month = text.split("-")
    if len(year) != 4 or not 1 <= int(month) <= 12:
        raise ValueError(f"not a month (YYYY-MM): {text!r}")
    return f"{int(year):04d}-{int(month):02d}-01"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("persons")
    parser.add_argument("medical")
    parser.add_argument("first_month", help="YYYY-MM, the window's first month")
    parser.add_argument("last_month", help="YYYY-MM, the window's last month")
    parser.add_argument("--out", default="duckdb_candidates.csv")
    parser.add_argument(
        "--threshold-fen",
        action="append",
        default=[],
        metavar="TYPE=FEN",
        help="a household type's threshold in fen (repeatable)",
    )
    args = parser.parse_args()

    thresholds = dict(DEFAULT_THRESHOLDS_FEN)
    for item in args.threshold_fen:
        kind, fen = item.split("=", 1)
        thresholds[kind] = int(fen)
    first = month_start(args.first_month)
    last = month_start(args.last_month)

    # Every thread DuckDB wants (its default: one per core); an in-memory
    # database, as the files are read straight from CSV.
    con = duckdb.connect(":memory:")
    started = time.perf_counter()
    # Explicit column types: no sniffing pass over the file, and amounts read
    # as exact decimals (sums of DECIMAL(18,2) stay exact) rather than doubles.
    # The window is [first month's 1st, the 1st after the last month). The
    # thresholds are a VALUES table of (type, fen), one parameter pair a type.
    values = ", ".join("(?, ?::BIGINT)" for _ in thresholds)
    result = con.execute(
        f"""
        WITH persons AS (
            SELECT * FROM read_csv(?, header = true, columns = {{
                'id_number': 'VARCHAR', 'household_id': 'VARCHAR',
                'household_type': 'VARCHAR'}})
        ),
        medical AS (
            SELECT * FROM read_csv(?, header = true, columns = {{
                'id_number': 'VARCHAR', 'settlement_date': 'DATE',
                'inpatient': 'INTEGER', 'total_cost': 'DECIMAL(18,2)',
                'reimbursed': 'DECIMAL(18,2)', 'out_of_pocket': 'DECIMAL(18,2)'}})
        ),
        thresholds AS (
            SELECT * FROM (VALUES {values}) AS t(household_type, threshold_fen)
        ),
        costs AS (
            SELECT p.household_id, p.household_type,
                   CAST(SUM(m.out_of_pocket) * 100 AS BIGINT) AS cost_fen
            FROM medical m JOIN persons p USING (id_number)
            WHERE m.inpatient = 1
              AND m.settlement_date >= CAST(? AS DATE)
              AND m.settlement_date < CAST(? AS DATE) + INTERVAL 1 MONTH
            GROUP BY p.household_id, p.household_type
        )
        SELECT c.household_id, c.cost_fen
        FROM costs c JOIN thresholds t USING (household_type)
        WHERE c.cost_fen >= t.threshold_fen
        ORDER BY c.household_id
        """,
        [
            args.persons,
            args.medical,
            *(x for pair in thresholds.items() for x in pair),
            first,
            last,
        ],
    ).fetchall()
    query_seconds = time.perf_counter() - started

    with open(args.out, "w", encoding="utf-8") as out:
        for household_id, cost_fen in result:
            out.write(f"{household_id},{cost_fen}\n")
    threads = con.execute("SELECT current_setting('threads')").fetchone()[0]
    print(
        json.dumps(
            {
                "duckdb_version": duckdb.__version__,
                "threads": threads,
                "query_seconds": query_seconds,
                "candidates": len(result),
                "out": args.out,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Summarise a test timeline written with UMODELS_TEST_TIMELINE=FILE (see tests/conftest.py).

    python scripts/timeline.py FILE [--top N]

For each backend's suite in the file (``bash .ci/run`` appends all three): per pytest worker, its
number of tests, busy seconds, when it ended and how long it then sat idle until the last worker
finished; and the N longest test modules (or classes within a module) with the XLA compilations
they ran and the seconds those took (JAX only; zero on the other backends).
"""

from __future__ import annotations

import argparse
import collections
from typing import NamedTuple


class Row(NamedTuple):
    worker: str
    start: float
    end: float
    compiles: int
    compile_seconds: float
    nodeid: str


def summarise(rows: list[Row], top: int) -> None:
    first = min(row.start for row in rows)
    last = max(row.end for row in rows)
    busy_total = sum(row.end - row.start for row in rows)
    compile_total = sum(row.compile_seconds for row in rows)
    print(f"{len(rows)} tests, {last - first:.0f} s from the first start to the last end; "
          f"busy {busy_total:.0f} s, of which compiling {compile_total:.0f} s")
    by_worker = collections.defaultdict(list)
    for row in rows:
        by_worker[row.worker].append(row)
    for worker, items in sorted(by_worker.items()):
        busy = sum(item.end - item.start for item in items)
        end = max(item.end for item in items)
        print(f"  {worker}: {len(items)} tests, busy {busy:.0f} s, ends {end - first:.0f} s "
              f"(idle at the end {last - end:.0f} s)")
    scopes = collections.defaultdict(lambda: [0.0, 0, 0.0])
    for row in rows:
        path, _, rest = row.nodeid.partition("::")
        scope = scopes[path + ("::" + rest.split("::")[0] if "::" in rest else "")]
        scope[0] += row.end - row.start
        scope[1] += row.compiles
        scope[2] += row.compile_seconds
    print("longest scopes (module, or class within a module): seconds, compilations, compiling seconds")
    for name, (seconds, compiles, compiling) in sorted(scopes.items(), key=lambda item: -item[1][0])[:top]:
        print(f"  {seconds:7.1f} s  {compiles:6d}  {compiling:7.1f} s  {name}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("timeline")
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args()
    suites = collections.defaultdict(list)
    with open(args.timeline) as handle:
        for number, line in enumerate(handle, 1):
            fields = line.rstrip("\n").split("\t", 6)
            if len(fields) != 7:
                raise SystemExit(f"{args.timeline}, line {number}: expected 7 tab-separated fields "
                                 f"(backend, worker, start, end, compilations, compiling seconds, test id), "
                                 f"got {len(fields)}; was it written by an older tests/conftest.py?")
            backend, worker, start, end, compiles, compiling, nodeid = fields
            suites[backend].append(Row(worker, float(start), float(end), int(compiles), float(compiling), nodeid))
    if not suites:
        raise SystemExit(f"{args.timeline} holds no tests")
    for backend, rows in suites.items():
        print(f"== {backend}")
        summarise(rows, args.top)


if __name__ == "__main__":
    main()

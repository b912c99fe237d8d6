"""Summarise a test timeline written with UMODELS_TEST_TIMELINE=FILE (see tests/conftest.py).

    python scripts/timeline.py FILE [--top N]

Prints, per pytest worker, its first start, last end, busy seconds and number of tests, how long
each worker sat idle before the last one finished, and the N longest test modules (or classes).
"""

from __future__ import annotations

import argparse
import collections


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("timeline")
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args()
    rows = []
    with open(args.timeline) as handle:
        for line in handle:
            worker, start, end, nodeid = line.rstrip("\n").split("\t", 3)
            rows.append((worker, float(start), float(end), nodeid))
    if not rows:
        raise SystemExit(f"{args.timeline} holds no tests")
    first = min(row[1] for row in rows)
    last = max(row[2] for row in rows)
    print(f"{len(rows)} tests, {last - first:.0f} s from the first start to the last end")
    by_worker = collections.defaultdict(list)
    for row in rows:
        by_worker[row[0]].append(row)
    for worker, items in sorted(by_worker.items()):
        busy = sum(end - start for _, start, end, _ in items)
        end = max(item[2] for item in items)
        print(f"  {worker}: {len(items)} tests, busy {busy:.0f} s, ends {end - first:.0f} s "
              f"(idle at the end {last - end:.0f} s)")
    scopes = collections.defaultdict(float)
    for _, start, end, nodeid in rows:
        path, _, rest = nodeid.partition("::")
        scope = path + ("::" + rest.split("::")[0] if "::" in rest else "")
        scopes[scope] += end - start
    print(f"longest scopes (module, or class within a module):")
    for scope, seconds in sorted(scopes.items(), key=lambda item: -item[1])[: args.top]:
        print(f"  {seconds:7.1f} s  {scope}")


if __name__ == "__main__":
    main()

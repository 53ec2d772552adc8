#!/usr/bin/env python3
"""Prints the slowest tests of a nextest run, from its JUnit report.

    scripts/slowest-tests.py [JUNIT_XML] [--top N]

`make test` runs it last, so the next slow test is seen. The report is nextest's
(`[profile.default.junit]` in .config/nextest.toml): one <testcase> per test, with its time in
seconds and its binary as the class name.
"""
import argparse
import sys
import xml.etree.ElementTree as ET


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("junit", nargs="?", default="target/nextest/default/junit.xml")
    ap.add_argument("--top", type=int, default=10)
    args = ap.parse_args()
    try:
        root = ET.parse(args.junit).getroot()
    except (OSError, ET.ParseError) as e:
        print(f"slowest-tests: no nextest report to read ({e})", file=sys.stderr)
        return 1
    cases = []
    for case in root.iter("testcase"):
        try:
            seconds = float(case.get("time", "0"))
        except ValueError:
            continue
        failed = case.find("failure") is not None or case.find("error") is not None
        cases.append((seconds, case.get("classname", ""), case.get("name", ""), failed))
    cases.sort(reverse=True)
    total = sum(c[0] for c in cases)
    print(f"::: the {min(args.top, len(cases))} slowest of {len(cases)} tests "
          f"({total:.0f} s of test time in all):")
    for seconds, binary, name, failed in cases[: args.top]:
        mark = "  FAILED" if failed else ""
        print(f"{seconds:8.1f} s  {binary} {name}{mark}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

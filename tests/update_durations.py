"""Write tests/durations.json from a JUnit XML report of a full run:

    python -m pytest -q --junitxml=/tmp/junit.xml && python tests/update_durations.py /tmp/junit.xml

conftest.py marks every test that took SLOW_S or more there as `slow`, so `-m "not slow"` is the
fast loop. A test not in the file (a new one) counts as fast until the file is written again."""

from __future__ import annotations

import json
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

OUT = Path(__file__).with_name("durations.json")


def main(report: str) -> None:
    durations = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        parts = case.get("classname", "").split(".")
        module = "/".join(x for x in parts if not x[:1].isupper()) + ".py"  # Class parts off
        durations[f"{module}::{case.get('name')}"] = round(float(case.get("time", 0)), 2)
    OUT.write_text(json.dumps(dict(sorted(durations.items())), indent=0) + "\n")
    print(f"{len(durations)} tests, {sum(durations.values()):.0f} s in all -> {OUT}")


if __name__ == "__main__":
    main(sys.argv[1])

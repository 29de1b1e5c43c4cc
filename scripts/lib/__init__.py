"""What the scripts and the benchmark share: `net` (free ports, waiting for a server,
JSON over HTTP), `template` (template.yaml read once, its intrinsic functions resolved
in one place) and `testca` (a throwaway certificate authority); here, `REPO` and the
`exit_status` a step ends with."""

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def exit_status(step, failures, failed, passed):
    """A step's exit status and last line, prefixed `step: `: with `failures`, `failed`
    on stderr and 1; without, `passed` on stdout and 0."""
    if failures:
        print(f"{step}: {failed}", file=sys.stderr)
        return 1
    print(f"{step}: {passed}")
    return 0

"""What the scripts and the benchmark share: `net` (free ports, waiting for a server,
JSON over HTTP), `template` (template.yaml read once, its intrinsic functions resolved
in one place) and `testca` (a throwaway certificate authority)."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

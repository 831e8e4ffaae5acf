"""Alias of ``python -m bench.quality --model flow --recon-steps 10 25 50`` (the flow test bed's rows).

    python -m bench.flow_quality [--clips 3] [other bench.quality options]

Kept so the commands in the docs keep working; the variants and columns are bench/quality.py's.
"""

from __future__ import annotations

import sys

from bench.quality import main as quality_main


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    recon = [] if "--recon-steps" in args else ["--recon-steps", "10", "25", "50"]
    defaults = ["--model", "flow", "--clips", "3"] + recon
    quality_main(defaults + args)


if __name__ == "__main__":
    main()

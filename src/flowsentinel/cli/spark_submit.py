"""The ``spark-submit`` entry point: ``spark-submit [options] .../flowsentinel/cli/spark_submit.py INPUT... OUTPUT --model-dir DIR``.

The arguments are those of ``flowsentinel spark-detect``; the session is the
one ``spark-submit`` configured (master, executors, memory), see docs/scale-out.md.
"""

from __future__ import annotations

import sys

if __name__ == "__main__":  # pragma: no cover - run by spark-submit
    from flowsentinel.cli import main

    sys.exit(main(["spark-detect", *sys.argv[1:]]))

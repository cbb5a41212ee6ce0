"""Write the fidelity table (``docs/fidelity.md``) from the twin registry and the verdicts."""

import argparse
import sys
from pathlib import Path

from ..fidelity import table


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m asyncpf.tools.fidelity_table", description=__doc__)
    p.add_argument("path", nargs="?", default="docs/fidelity.md", help="where to write it (default docs/fidelity.md)")
    path = Path(p.parse_args(argv).path)
    path.write_text(table())
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Write the fidelity table (``docs/fidelity.md``) from the twin registry and the verdicts."""

import sys
from pathlib import Path

from ..fidelity import table


def main(argv: list[str]) -> int:
    path = Path(argv[0]) if argv else Path("docs/fidelity.md")
    path.write_text(table())
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

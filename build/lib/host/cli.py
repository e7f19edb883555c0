"""The ``quiver`` command: the servers' CLI (:mod:`servers.core.cli`) plus the host's ``ask``, ``chat`` and ``demo``."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from host import commands
from servers.core import cli


def main(argv: Sequence[str] | None = None) -> int:
    return cli.main(argv, extensions=[commands.register])


def build_parser():  # noqa: ANN201 - the argparse parser of the full command
    return cli.build_parser([commands.register])


if __name__ == "__main__":
    sys.exit(main())

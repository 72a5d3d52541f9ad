"""Print the schema's SDL: ``python -m backend.graphql.export > schema.graphql``."""

from __future__ import annotations

import sys

from backend.graphql.schema import schema


def sdl() -> str:
    return schema.as_str().rstrip("\n") + "\n"


def main() -> None:
    sys.stdout.write(sdl())


if __name__ == "__main__":
    main()

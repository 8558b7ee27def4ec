"""``python -m peepsy.child MODULE[:ATTRIBUTE]``: serve a Child defined in a module.

The attribute defaults to ``child``. A typical worker module defines
``child = Child(...)`` and its handlers; this runs it on stdin/stdout.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from peepsy.child._child import Child


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m peepsy.child", description=__doc__.splitlines()[0]
    )
    parser.add_argument("target", help="MODULE[:ATTRIBUTE], for example myapp.worker:child")
    parser.add_argument("--log-level", default="WARNING", help="logging level on stderr")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr)
    module_name, _, attr = args.target.partition(":")
    sys.path.insert(0, "")
    module = importlib.import_module(module_name)
    child = getattr(module, attr or "child", None)
    if not isinstance(child, Child):
        parser.error(f"{args.target} is not a peepsy Child")
    child.run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

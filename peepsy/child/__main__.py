"""``python -m peepsy.child MODULE[:ATTRIBUTE]``: serve a Child, or a function, from a module.

The attribute defaults to ``child``. A typical worker module defines ``child =
Child(...)`` and its handlers; this runs it on stdin/stdout. When the attribute is a
plain function instead, the child serves it alone under the action named by ``--action``
(default: the function's name): the request data is its argument, its return value the
answer. ``--functions`` serves any importable function by reference, the worker of
:class:`peepsy.sync.Executor`.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from peepsy.child._child import Child
from peepsy.child._functions import function_child, single_function_child


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m peepsy.child", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "target", nargs="?", help="MODULE[:ATTRIBUTE], for example myapp.worker:child"
    )
    parser.add_argument("--log-level", default="WARNING", help="logging level on stderr")
    parser.add_argument(
        "--functions", action="store_true", help="serve functions named by reference"
    )
    parser.add_argument("--action", help="the action name a single function is served as")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr)
    sys.path.insert(0, "")
    if args.functions:
        if args.target is not None:
            parser.error("--functions takes no MODULE[:ATTRIBUTE]")
        function_child().run()
        return 0
    if args.target is None:
        parser.error("MODULE[:ATTRIBUTE] is required (or --functions)")
    module_name, _, attr = args.target.partition(":")
    module = importlib.import_module(module_name)
    found = getattr(module, attr or "child", None)
    if isinstance(found, Child):
        child = found
    elif callable(found) and attr:
        child = single_function_child(found, args.action or attr.rpartition(".")[2])
    else:
        parser.error(f"{args.target} is not a peepsy Child or a function")
    child.run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Stands in for ``ssh`` where no sshd is needed: runs the remote command locally with
``sh -c`` (as sshd would with a POSIX login shell), or fails as its destination says.

``fake_ssh.py [--down-if FILE] SSH-OPTIONS... -- DESTINATION COMMAND``: ``hang`` never
starts the command; ``refuse`` says so and exits 255, as does any destination while
FILE exists; ``mute`` exits 255 without a word.
"""

from __future__ import annotations

import os
import sys

args = sys.argv[1:]
down = args[1] if args[:1] == ["--down-if"] else None
destination, command = args[args.index("--") + 1 :]
if destination == "hang":
    sys.stdin.buffer.read()  # until the master gives up and kills it
    sys.exit(0)
if destination == "mute":
    sys.exit(255)
if destination == "refuse" or (down is not None and os.path.exists(down)):
    sys.stderr.write(f"ssh: connect to host {destination} port 22: Connection refused\n")
    sys.exit(255)
os.execvp("sh", ["sh", "-c", command])

"""``python -m reglab``: the ``reglab`` command."""

import sys

try:
    from reglab.cli import main
except KeyboardInterrupt:  # Ctrl-C while the command starts: one line, as main() says it later
    print("reglab: interrupted", file=sys.stderr)
    sys.exit(130)

sys.exit(main())

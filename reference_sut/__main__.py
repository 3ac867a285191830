"""``python -m segur.reference_sut --profile dpi [--defects a,b] [--port 0]``.

Prints one JSON line ``{"url": ...}`` once listening, then serves until terminated.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys

from segur import __version__
from segur.reference_sut.defects import parse_defects
from segur.reference_sut.server import make_server
from segur.reference_sut.software import IdentitySoftware


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m segur.reference_sut", description=__doc__)
    parser.add_argument("--profile", choices=("dpi", "lgc"), default="dpi")
    parser.add_argument("--defects", default="", help="comma-separated defect names (segur sut defects)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        defects = parse_defects(args.defects)
    except ValueError as error:
        parser.error(str(error))
    # SIGTERM (how the harness stops us) must unwind normally so that the data directory is removed.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    server = make_server(IdentitySoftware(args.profile, defects, __version__), args.host, args.port)
    host, port = server.server_address[:2]
    print(json.dumps({"url": f"http://{host}:{port}"}), flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`python -m infra.local`: serve the gateway on loopback (see README, `make local`)."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
import threading
from pathlib import Path

from infra.local.runtime import LocalGateway, PortInUse, RuntimeOptions, default_admin_key
from infra.local.state import STATE_FILE, discard


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.local", description=__doc__)
    parser.add_argument("--app", default="infra.app:build_app", help="module:function returning the CDK App")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8080")), help="0 picks a free port")
    parser.add_argument(
        "--tls-port",
        type=int,
        default=int(os.environ.get("TLS_PORT", "8443")),
        help="HTTPS with client certificates (mTLS); 0 picks a free port, -1 turns it off",
    )
    parser.add_argument(
        "--time-scale",
        type=float,
        default=float(os.environ.get("LOCAL_TIME_SCALE", "1")),
        help="run schedules this many times faster (demos, tests)",
    )
    parser.add_argument("--state-dir", type=Path, default=Path(os.environ.get("LOCAL_STATE_DIR", ".local")))
    parser.add_argument(
        "--fresh",
        action="store_true",
        default=os.environ.get("LOCAL_FRESH", "") not in ("", "0"),
        help=f"start clean: forget the tables saved by earlier runs (<state dir>/{STATE_FILE}); also LOCAL_FRESH=1",
    )
    parser.add_argument(
        "--integration-timeout",
        type=float,
        default=float(os.environ.get("LOCAL_INTEGRATION_TIMEOUT_S", "29")),
        help="API Gateway's integration timeout in seconds (29 in AWS)",
    )
    parser.add_argument(
        "-c", "--context", action="append", default=[], metavar="KEY=VALUE", help="CDK context, as with cdk -c"
    )
    parser.add_argument("--log-level", default=os.environ.get("LOCAL_LOG_LEVEL", "INFO"))
    args = parser.parse_args(argv)
    if args.host not in ("127.0.0.1", "::1", "localhost"):
        parser.error("the local runtime serves loopback only")
    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s", stream=sys.stderr
    )
    if args.fresh and discard(args.state_dir):
        print(f"starting clean: the saved local state ({args.state_dir / STATE_FILE}) was discarded", flush=True)
    gateway = LocalGateway(
        RuntimeOptions(
            app=args.app,
            host=args.host,
            port=args.port,
            time_scale=args.time_scale,
            state_dir=args.state_dir,
            integration_timeout_s=args.integration_timeout,
            tls_port=None if args.tls_port < 0 else args.tls_port,
            admin_key=default_admin_key(),
            context=dict(item.split("=", 1) for item in args.context),
        )
    )
    try:
        gateway.start()
    except PortInUse as refused:
        print(f"python -m infra.local: {refused}", file=sys.stderr)
        return 2
    print(gateway.banner(), flush=True)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    with contextlib.suppress(KeyboardInterrupt):
        stopped.wait()
    gateway.stop()
    print("stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

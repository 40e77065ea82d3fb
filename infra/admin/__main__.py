"""`python -m infra.admin`: admin API keys of a deployed stack, from a terminal with AWS access.

  create-key   a new admin key (scope admin), shown once; stored hashed, audited as a bootstrap
  list-keys    the admin keys: id, client, name, status, prefix and last four (never a secret or hash)
  rotate-key   a new key shown once; the old one keeps working until its grace ends
  revoke-key   refused from now on; flushes the API's authorizer cache when it can

The table is the stack's `TableName` output (CloudFormation DescribeStacks), or `--table`.
Against the local twin, `--endpoint-url` is its moto endpoint (the `AWS (moto)` banner line).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from gateway_core.clock import utc_now
from gateway_core.errors import GatewayError
from infra.admin.deployment import DEFAULT_STACK, Aws, Deployment, DeploymentError, flush_authorizer_cache, resolve
from infra.admin.keys import BOOTSTRAP_CLIENT_ID, DEFAULT_NAME, AdminKeys, IssuedKey, operator_actor, shown


def _common(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    """Options accepted before or after the command (after it, they override)."""

    def default(value: Any) -> Any:
        return argparse.SUPPRESS if suppress else value

    parser.add_argument("--stack", default=default(DEFAULT_STACK), help="CloudFormation stack (default FinanceGateway)")
    parser.add_argument("--region", default=default(None), help="AWS region (default: the AWS configuration's)")
    parser.add_argument(
        "--endpoint-url",
        default=default(None),
        help="another AWS endpoint, e.g. the local runtime's moto: http://127.0.0.1:41234",
    )
    parser.add_argument("--table", default=default(None), help="the data table (default: the stack's TableName output)")
    parser.add_argument("--json", action="store_true", default=default(False), help="machine-readable output")


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="python -m infra.admin", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    _common(root, suppress=False)
    commands = root.add_subparsers(dest="command", required=True, metavar="COMMAND")
    create = commands.add_parser("create-key", help="create an admin key (shown once)")
    create.add_argument("--client-id", default=BOOTSTRAP_CLIENT_ID, help="default bootstrap-admin")
    create.add_argument("--name", default=DEFAULT_NAME)
    commands.add_parser("list-keys", help="list admin keys (prefix and last four only)")
    rotate = commands.add_parser("rotate-key", help="rotate an admin key; the old one works until its grace ends")
    rotate.add_argument("key_id", metavar="KEY_ID")
    rotate.add_argument(
        "--grace-seconds",
        type=int,
        default=None,
        help="how long the old key keeps working (default 86400; 0: not at all)",
    )
    revoke = commands.add_parser("revoke-key", help="revoke an admin key and flush the authorizer cache")
    revoke.add_argument("key_id", metavar="KEY_ID")
    for command in (create, commands.choices["list-keys"], rotate, revoke):
        _common(command, suppress=True)
    return root


def _masked(key: dict[str, Any]) -> str:
    return f"{key['prefix']}…{key['last_four']}"


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _print_new(issued: IssuedKey, as_json: bool, extra: dict[str, Any] | None = None) -> None:
    """The one display of a new key's secret: alone on stdout (or in the JSON document)."""
    if as_json:
        document = {**shown(issued.key), "api_key": issued.secret}
        print(json.dumps({"new_key": document, **extra} if extra is not None else document, indent=2))
    else:
        print(issued.secret, flush=True)


def _create(args: argparse.Namespace, admin: AdminKeys, deployment: Deployment, aws: Aws) -> int:
    issued = admin.create(
        actor=operator_actor("cli", aws.caller()),
        now=utc_now(),
        environment=deployment.environment,
        client_id=args.client_id,
        name=args.name,
    )
    _say(
        f"Created admin key {issued.key.key_id} for {issued.key.client_id} ({_masked(shown(issued.key))}), "
        f"audited as key.bootstrap_create. It is shown once{'' if args.json else ', below'}: store it now; "
        "only its SHA-256 is kept."
    )
    _print_new(issued, args.json)
    return 0


def _list(args: argparse.Namespace, admin: AdminKeys) -> int:
    keys = [shown(k) for k in admin.admin_keys()]
    if args.json:
        print(json.dumps(keys, indent=2))
        return 0
    columns = ("key_id", "client_id", "name", "status", "key", "created_at", "note")
    rows = []
    for key in keys:
        note = []
        if key["revoked_at"]:
            note.append(f"revoked {key['revoked_at']}")
        if key["rotated_to"]:
            note.append(f"rotated to {key['rotated_to']}, works until {key['grace_until']}")
        if key["last_used_at"]:
            note.append(f"last used {key['last_used_at']}")
        rows.append({**key, "key": _masked(key), "note": "; ".join(note)})
    widths = {c: max([len(c), *(len(str(r[c])) for r in rows)]) for c in columns}
    print("  ".join(c.upper().ljust(widths[c]) for c in columns).rstrip())
    for row in rows:
        print("  ".join(str(row[c]).ljust(widths[c]) for c in columns).rstrip())
    if not rows:
        _say("no admin keys")
    return 0


def _rotate(args: argparse.Namespace, admin: AdminKeys, deployment: Deployment, aws: Aws) -> int:
    grace = timedelta(seconds=args.grace_seconds) if args.grace_seconds is not None else None
    issued, old = admin.rotate(
        args.key_id,
        grace,
        actor=operator_actor("cli", aws.caller()),
        now=utc_now(),
        environment=deployment.environment,
    )
    # Always: the old key's cached Allows know nothing of its grace and could outlast it.
    flush_error = flush_authorizer_cache(aws, deployment)
    _say(
        f"Rotated {old.key_id} to {issued.key.key_id} ({_masked(shown(issued.key))}); "
        f"the old key works until {old.grace_until}. The new key is shown once"
        f"{'' if args.json else ', below'}: store it now."
    )
    if flush_error:
        _say(
            f"Could not flush the authorizer cache ({flush_error}); "
            "the old key may be accepted for up to 300 s past its grace."
        )
    _print_new(issued, args.json, {"old_key": shown(old)})
    return 0


def _revoke(args: argparse.Namespace, admin: AdminKeys, deployment: Deployment, aws: Aws) -> int:
    key = admin.revoke(args.key_id, actor=operator_actor("cli", aws.caller()), now=utc_now())
    flush_error = flush_authorizer_cache(aws, deployment)
    if args.json:
        print(
            json.dumps(
                {"key": shown(key), "authorizer_cache_flushed": flush_error is None, "flush_error": flush_error},
                indent=2,
            )
        )
    else:
        print(f"Revoked {key.key_id} ({_masked(shown(key))}) at {key.revoked_at}.")
    if flush_error is None:
        _say("Authorizer cache flushed: the key is refused from the next request.")
    else:
        _say(
            f"Could not flush the authorizer cache ({flush_error}); answers API Gateway cached for this key "
            "expire within 300 s (the authorizer's TTL)."
        )
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        aws = Aws(args.region, args.endpoint_url)
        deployment = resolve(aws, args.stack, args.table)
        admin = AdminKeys(aws.client("dynamodb"), deployment.table)
        if args.command == "create-key":
            return _create(args, admin, deployment, aws)
        if args.command == "list-keys":
            return _list(args, admin)
        if args.command == "rotate-key":
            return _rotate(args, admin, deployment, aws)
        return _revoke(args, admin, deployment, aws)
    except GatewayError as error:
        _say(f"error: {error.detail} ({error.code})")
    except DeploymentError as error:
        _say(f"error: {error}")
    except (BotoCoreError, ClientError) as error:
        _say(f"error: AWS said: {error}")
    return 1


if __name__ == "__main__":
    sys.exit(main())

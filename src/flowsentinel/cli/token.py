"""``flowsentinel token``: make, list and revoke the service's bearer tokens."""

from __future__ import annotations

import argparse
import sys

NAME = "token"
HELP = "make, list and revoke bearer tokens of the scoring service (stored hashed)"


def add_arguments(t: argparse.ArgumentParser) -> None:
    from ..service.tokens import SCOPES

    sub = t.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = sub.add_parser("add", help="make a token; it is printed once, only its hash is kept")
    add.add_argument("--file", required=True, help="the token file (created with mode 600)")
    add.add_argument("--name", required=True, help="who or what the token is for (logged on refusals)")
    add.add_argument("--scope", choices=SCOPES, default="score", help="score (default) or admin (also swaps models)")
    lst = sub.add_parser("list", help="names and scopes of the tokens in a file")
    lst.add_argument("--file", required=True)
    rev = sub.add_parser("revoke", help="remove a token; a running service forgets it on SIGHUP")
    rev.add_argument("--file", required=True)
    rev.add_argument("--name", required=True)


def run(args: argparse.Namespace) -> int:
    from ..service.tokens import add_token, list_tokens, revoke_token

    if args.action == "add":
        token = add_token(args.file, args.name, args.scope)
        print(token)
        print(f"token {args.name!r} ({args.scope}) added to {args.file}; it is shown only now. "
              "Reload a running service with SIGHUP.", file=sys.stderr)
    elif args.action == "list":
        for name, scope in list_tokens(args.file):
            print(f"{name}\t{scope}")
    else:
        revoke_token(args.file, args.name)
        print(f"token {args.name!r} removed from {args.file}; reload a running service with SIGHUP", file=sys.stderr)
    return 0

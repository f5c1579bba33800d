"""Make and check TLS certificates.

  python -m server tls selfsigned [--host H ...] [--out DIR] [--rsa [--bits N]] [--days N]
  python -m server tls check CERT KEY [--host H ...] [--ca CA] [--days N]

`check` prints one OK/FAIL/SKIP line per check and exits with the status of
the first failure: 0 all passed, 2 file missing/unreadable/not PEM (or usage
error), 3 key does not match certificate, 8 weak key or SHA-1/MD5 signature,
6 expired or not yet valid, 4 chain does not verify, 5 host not covered,
9 key file permissions too open, 7 expires within --days.  See docs/tls.md.
"""
from __future__ import annotations

import argparse
import sys

EXIT_USAGE = 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    sub = parser.add_subparsers(dest="tls_command", metavar="ACTION")

    make = sub.add_parser("selfsigned", help="make a development CA and a server certificate",
                          description="Make (or reuse) a development CA in --out and issue a "
                                      "server certificate for the hosts.")
    make.add_argument("--host", action="append", default=[], metavar="H",
                      help="DNS name or IP address to cover; repeat for more "
                           "(default: localhost, 127.0.0.1, ::1)")
    make.add_argument("--out", default="tls", metavar="DIR",
                      help="directory for the files (default: ./tls)")
    make.add_argument("--rsa", action="store_true", help="RSA keys instead of ECDSA P-256")
    make.add_argument("--bits", type=int, default=2048, metavar="N",
                      help="RSA key size, >= 2048 (default 2048; needs --rsa)")
    make.add_argument("--days", type=int, default=365, metavar="N",
                      help="lifetime of the server certificate, 1..825 days (default 365)")

    check = sub.add_parser("check", help="check a certificate and key before deploying them",
                           description=__doc__,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    check.add_argument("cert", metavar="CERT", help="PEM certificate file (leaf first, then "
                                                    "intermediates)")
    check.add_argument("key", metavar="KEY", nargs="?", default=None,
                       help="PEM private key file (default: the key inside CERT)")
    check.add_argument("--host", action="append", default=[], metavar="H",
                       help="a name clients connect to; repeat for more")
    check.add_argument("--ca", metavar="CA", default=None,
                       help="CA bundle to verify against (default: the system trust store, "
                            "plus a root included in CERT)")
    check.add_argument("--days", type=int, default=30, metavar="N",
                       help="fail (exit 7) if a certificate expires within N days (default 30)")
    parser.set_defaults(_tls_parser=parser)


def _selfsigned(args: argparse.Namespace) -> int:
    from server.errors import ConfigurationError
    from server.tls_certs import selfsigned, trust_instructions

    if args.bits != 2048 and not args.rsa:
        print("error: --bits applies to RSA keys; fix: add --rsa, or drop --bits for ECDSA "
              "P-256", file=sys.stderr)
        return EXIT_USAGE
    try:
        issued = selfsigned(args.out, args.host, kind="rsa" if args.rsa else "ec",
                            bits=args.bits, days=args.days)
    except ConfigurationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        print(f"error: cannot write to {args.out}: {exc.strerror}; fix: choose a writable "
              f"--out directory", file=sys.stderr)
        return EXIT_USAGE
    verb = "reused" if issued.ca_reused else "created"
    print(f"CA ({verb}):      {issued.ca}")
    print(f"CA key:           {issued.ca_key}  (mode 0600; keep it private)")
    print(f"certificate:      {issued.cert}  for {', '.join(issued.hosts)}")
    print(f"key:              {issued.key}  (mode 0600)")
    print(f"full chain:       {issued.fullchain}")
    print()
    print(f"serve with:  gunicorn -c gunicorn.conf.py --certfile {issued.cert} "
          f"--keyfile {issued.key} wsgi:app")
    print("trust the CA on clients:")
    for line in trust_instructions(issued.ca):
        print(f"  {line}")
    return 0


def _check(args: argparse.Namespace) -> int:
    from server.tls_check import exit_status, run_checks

    if args.days < 0:
        print(f"error: --days {args.days} is negative; fix: give a number of days >= 0",
              file=sys.stderr)
        return EXIT_USAGE
    findings = run_checks(args.cert, args.key, args.host, args.ca, args.days)
    for finding in findings:
        print(finding.line())
    status = exit_status(findings)
    failed = next((f.check for f in findings if f.ok is False), None)
    print(f"result: {'FAIL (' + failed + ')' if failed else 'OK'}, exit status {status}")
    return status


def main(args: argparse.Namespace) -> int:
    action = getattr(args, "tls_command", None)
    if action == "selfsigned":
        return _selfsigned(args)
    if action == "check":
        return _check(args)
    args._tls_parser.print_help(sys.stderr)
    return EXIT_USAGE

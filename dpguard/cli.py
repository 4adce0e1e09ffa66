"""The `dpguard` command. Exit codes: 0 clean, 1 violations, 2 bad input or usage."""
from __future__ import annotations

import argparse
import gc
import os
import sys
from pathlib import Path

from . import __version__
from .cli_common import EXIT_CLEAN, EXIT_INCOMPLETE, EXIT_USAGE, EXIT_VIOLATIONS, Parser, UsageError, write


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser of every subcommand; with `command`, of that one alone: `dpguard scan` parses
    its arguments without building the parsers of the seven others (3-4 ms). `dpguard --help`
    and an unknown command are parsed by the whole parser."""
    parser = Parser(prog="dpguard", description="The Data Protection Policy as code for AWS "
                                                "CloudFormation and CDK.")
    parser.add_argument("--version", action="version", version=f"dpguard {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for name, add in SUBCOMMANDS.items():  # in the order of `dpguard --help`
        if command in (None, name):
            add(commands)
    return parser


def _add_scan(commands) -> None:
    from .output import SCAN_FORMATS

    scan = commands.add_parser("scan", help="judge templates or a cloud assembly",
                               description="Judge CloudFormation templates (JSON or YAML), directories "
                                           "of them, or CDK cloud assemblies (cdk.out).")
    scan.add_argument("paths", nargs="+", metavar="PATH")
    scan.add_argument("--format", choices=SCAN_FORMATS, default="table")
    scan.add_argument("--output", "-o", metavar="FILE", help="write the report here instead of stdout")
    scan.add_argument("--fail-on", choices=("error", "warning"), default="error",
                      help="lowest severity that makes the exit code 1 (default: error)")
    scan.add_argument("--config", metavar="FILE", help="YAML or JSON settings (see README)")
    scan.add_argument("--unverifiable", choices=("fail", "warn"),
                      help="fail (default): unverifiable values fail like violations; warn: report "
                           "them as warnings")
    scan.add_argument("--trust-parameter-defaults", action="store_true", default=None,
                      help="judge parameters without AllowedValues by their Default")
    scan.add_argument("--skip-rule", action="append", default=[], metavar="RULE_ID")
    scan.add_argument("--strict", action="store_true",
                      help="resources of a type that no rule judges fail too (DP-ResourceTypeJudged; "
                           "the setting `unjudged: fail`)")
    add_baseline_options(scan)
    scan.add_argument("--skip-non-templates", action="store_true",
                      help="pass over named files that are not CloudFormation templates, and find nothing "
                           "to judge a clean run (for pre-commit, which names every changed JSON and YAML file)")


def _add_audit(commands) -> None:
    from .output import AUDIT_FORMATS

    audit = commands.add_parser(
        "audit", help="judge what is really deployed in AWS accounts",
        description="Read live resources with boto3 and judge them with the same rules as scan. "
                    "Exit codes: 0 clean, 1 violations, 2 usage, 3 incomplete (some checks could "
                    "not run: nothing unread is reported compliant).")
    add_account_options(audit, "audit")
    audit.add_argument("--format", choices=AUDIT_FORMATS, default="table")
    audit.add_argument("--output", "-o", metavar="FILE")
    audit.add_argument("--fail-on", choices=("error", "warning"), default="error")
    audit.add_argument("--config", metavar="FILE", help="YAML or JSON settings, as for scan")
    audit.add_argument("--skip-rule", action="append", default=[], metavar="RULE_ID")
    audit.add_argument("--deadline", type=float, default=3600, metavar="SECONDS",
                       help="report after this long whatever is still unread, as incomplete (default 3600)")
    add_baseline_options(audit)
    audit.set_defaults(unverifiable=None, trust_parameter_defaults=None)


def _add_access_review(commands) -> None:
    review = commands.add_parser(
        "access-review", help="the quarterly access review: who can reach private data",
        description="List every IAM user and role with its last use, credentials and policies, who can "
                    "decrypt with each customer-managed KMS key, and what to remove or fix (clause 2). "
                    "Exit codes: 0 nothing flagged, 1 something flagged, 2 usage, 3 incomplete (some "
                    "part could not be read).")
    add_account_options(review, "review")
    review.add_argument("--format", choices=("table", "json", "csv", "markdown"), default="table")
    review.add_argument("--output", "-o", metavar="FILE", help="write the review here instead of stdout")
    review.add_argument("--today", metavar="YYYY-MM-DD",
                        help="the review's date, for reproducible reports (default: today)")


def _add_report(commands) -> None:
    report = commands.add_parser(
        "report", help="write the auditor report (HTML, Markdown, JSON data, CSV)",
        description="Write the auditor report of cloud assemblies (cdk.out: templates, CDK's "
                    "validation-report.json with the cdk-nag packs' results, acknowledgments), "
                    "templates, or saved `dpguard scan`/`dpguard audit` JSON: every clause of the "
                    "policy, its controls, findings, acknowledgments and evidence hashes.")
    report.add_argument("paths", nargs="+", metavar="PATH")
    report.add_argument("--out", required=True, metavar="DIR", help="folder for the report files")
    report.add_argument("--config", metavar="FILE", help="YAML or JSON settings, as for scan")
    report.set_defaults(unverifiable=None, trust_parameter_defaults=None, skip_rule=[])


# The response commands' parsers are their modules' (they set `handler` on them).
def _add_incident(commands) -> None:
    from .response import incident_cli
    incident_cli.add_parser(commands)


def _add_data_request(commands) -> None:
    from .response import request_cli
    request_cli.add_parser(commands)


def _add_secret_exposed(commands) -> None:
    from .response import secret_cli
    secret_cli.add_parser(commands)


def _add_rules(commands) -> None:
    from .output import RULE_FORMATS

    rules = commands.add_parser("rules", help="list the rule catalogue")
    rules.add_argument("--format", choices=RULE_FORMATS, default="table")
    rules.add_argument("--output", "-o", metavar="FILE")


SUBCOMMANDS = {"scan": _add_scan, "audit": _add_audit, "access-review": _add_access_review, "report": _add_report,
               "incident": _add_incident, "data-request": _add_data_request, "secret-exposed": _add_secret_exposed,
               "rules": _add_rules}


def add_baseline_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--baseline", metavar="FILE",
                        help="fail only on findings this baseline file does not list (the listed ones are "
                             "still reported, marked baselined)")
    parser.add_argument("--update-baseline", action="store_true",
                        help="write today's failing findings to the --baseline file first")


def apply_baseline(args: argparse.Namespace, report, complete: bool, command: str) -> list[str]:
    """--baseline FILE: mark the findings it lists as baselined (they no longer fail the run);
    --update-baseline rewrites it first, but not from a run that could not read everything
    (what it missed would drop out). Returns the lines for stderr, the fixed ones among them."""
    from .engine import baseline
    from .output.text import printable

    if args.update_baseline and not args.baseline:
        raise UsageError(f"dpguard {command}: --update-baseline needs --baseline FILE")
    if not args.baseline:
        return []
    notes = []
    if args.update_baseline and not complete:
        notes.append(f"dpguard: error: {args.baseline}: baseline not updated: the run could not read everything (its findings would drop out)")
        if not Path(args.baseline).exists():
            return notes
    elif args.update_baseline:
        written = baseline.write(args.baseline, report.findings)
        notes.append(f"dpguard: wrote {len(written)} finding(s) to the baseline {args.baseline}")
    fixed = baseline.apply(baseline.read(args.baseline), report.findings, {r.rule_id for r in report.rules})
    if fixed:
        shown = "; ".join(printable(baseline.describe(e)) for e in fixed[:3]) + (f"; and {len(fixed) - 3} more" * (len(fixed) > 3))
        notes.append(f"dpguard: note: {len(fixed)} finding(s) of the baseline {args.baseline} are fixed ({shown}); "
                     "remove them with --update-baseline")
    return notes


def add_account_options(parser: argparse.ArgumentParser, verb: str) -> None:
    """Whose credentials, which accounts and regions: shared by `audit` and `access-review`."""
    parser.add_argument("--region", action="append", default=[], metavar="REGION",
                        help=f"region to {verb} (repeatable; default: the session's region)")
    parser.add_argument("--all-regions", action="store_true", help="every region enabled in the account")
    parser.add_argument("--endpoint-url", metavar="URL", help="AWS endpoint (e.g. moto on loopback)")
    parser.add_argument("--profile", metavar="NAME", help="AWS profile of the calling credentials")
    who = parser.add_mutually_exclusive_group()
    who.add_argument("--role-arn", action="append", default=[], metavar="ARN",
                     help=f"assume this read-only role and {verb} its account (repeatable)")
    who.add_argument("--org", action="store_true",
                     help=f"{verb} every active account of the AWS Organization, through --org-role")
    parser.add_argument("--org-role", default="dpguard-audit", metavar="NAME",
                        help="role name to assume in each account with --org (default: dpguard-audit)")
    parser.add_argument("--external-id", metavar="ID",
                        help="the ExternalId the audit role's trust policy asks for (with --role-arn or --org)")
    parser.add_argument("--concurrency", type=int, default=8, metavar="N", help="parallel API readers (default 8)")


def load_config(path: str | None, args: argparse.Namespace):
    from .engine import Config
    from .engine.loader import InputError, parse_file

    settings: dict = {}
    if path:
        data = parse_file(Path(path))
        if not isinstance(data, dict):
            raise InputError(path, "the configuration must be a mapping")
        settings = dict(data)
    if args.unverifiable:
        settings["unverifiable"] = args.unverifiable
    if args.trust_parameter_defaults:
        settings["trust_parameter_defaults"] = True
    if getattr(args, "strict", False):
        settings["unjudged"] = "fail"
    if args.skip_rule:
        disabled = settings.get("disabled_rules") or []
        settings["disabled_rules"] = list(disabled) + args.skip_rule if isinstance(disabled, list) else disabled
    return Config.from_settings(settings, path or "--config")


def templates_among(paths: list[str]) -> list[str]:
    """The paths that may be templates: folders, and files that mention `Resources` or
    `AWSTemplateFormatVersion` unless they parse as something else. A file that does not parse
    is kept, so that a broken template is reported, not passed over."""
    from .engine.loader import InputError, looks_like_template, parse_file, read_capped

    kept = []
    for p in paths:
        if Path(p).is_file():
            try:
                text = read_capped(Path(p))
                if b"Resources" not in text and b"AWSTemplateFormatVersion" not in text:
                    continue
                if not looks_like_template(parse_file(Path(p))):
                    continue
            except InputError:
                pass
        kept.append(p)
    return kept


def scan(args: argparse.Namespace) -> int:
    from .engine import evaluate, load
    from .output import render_scan
    from .rules import catalogue

    known = {r.rule_id for r in catalogue()}
    unknown = [r for r in args.skip_rule if r not in known]
    if unknown:
        raise UsageError(f"dpguard scan: unknown rule id(s) {', '.join(unknown)} (see dpguard rules)")
    config = load_config(args.config, args)
    paths = templates_among(args.paths) if args.skip_non_templates else args.paths
    if not paths:
        print("dpguard scan: none of the files named is a CloudFormation template", file=sys.stderr)
        return EXIT_CLEAN
    app, errors = load(paths, trust_parameter_defaults=config.trust_parameter_defaults)
    # The templates, then the report too, are kept out of the garbage collector's passes while
    # they are judged and written: the passes would walk every value of every template again and
    # again (10-15 ms a scan of 2,000 resources) and find nothing to free.
    gc.freeze()
    try:
        for e in errors:
            print(f"dpguard: error: {e}", file=sys.stderr)
        if not app.templates and not errors:
            raise UsageError(f"dpguard scan: no CloudFormation templates found in {' '.join(args.paths)}")
        report = evaluate(app, config, catalogue())
        gc.freeze()  # the first pass after evaluate() would walk each of its objects (4 ms)
        notes = apply_baseline(args, report, not errors, "scan")
        color = not args.output and args.format == "table" and sys.stdout.isatty() and "NO_COLOR" not in os.environ
        write(render_scan(report, args.format, color=color, errors=errors), args.output)
    finally:
        gc.unfreeze()
    for note in notes:
        print(note, file=sys.stderr)
    if errors:
        return EXIT_USAGE
    return EXIT_VIOLATIONS if [f for f in report.failing(args.fail_on) if not f.baselined] else EXIT_CLEAN


def audit(args: argparse.Namespace) -> int:
    from .audit.cli import run_audit
    from .engine.findings import VIOLATION
    from .output import render_scan

    if args.concurrency < 1:
        raise UsageError("dpguard audit: --concurrency must be at least 1")
    if not args.deadline > 0:
        raise UsageError("dpguard audit: --deadline must be a positive number of seconds")
    result = run_audit(args, load_config(args.config, args))
    notes = apply_baseline(args, result.report, not result.incomplete, "audit")
    color = not args.output and args.format == "table" and sys.stdout.isatty() and "NO_COLOR" not in os.environ
    write(render_scan(result.report, args.format, color=color), args.output)
    for note in notes:
        print(note, file=sys.stderr)
    # 1: something is wrong; 3: nothing found wrong, but some checks could not run (what could
    # not be read is never reported compliant, so 3 is never 0)
    failing = [f for f in result.report.failing(args.fail_on) if not f.baselined]
    if any(f.status == VIOLATION for f in failing):
        return EXIT_VIOLATIONS
    if result.incomplete or failing:
        return EXIT_INCOMPLETE
    return EXIT_CLEAN


def access_review(args: argparse.Namespace) -> int:
    from .audit.access_review import command
    from .output.access_review_writers import render_review

    review = command(args)
    color = not args.output and args.format == "table" and sys.stdout.isatty() and "NO_COLOR" not in os.environ
    write(render_review(review, args.format, color=color), args.output)
    if review.flagged:
        return EXIT_VIOLATIONS
    return EXIT_INCOMPLETE if review.incomplete else EXIT_CLEAN


def report(args: argparse.Namespace) -> int:
    from . import report as auditor_report

    data = auditor_report.build(args.paths, load_config(args.config, args))
    try:
        paths = auditor_report.write(data, Path(args.out))
    except OSError as e:
        raise UsageError(f"dpguard report: cannot write {args.out}: {e.strerror or e}") from None
    for problem in data["evidence"]["problems"]:
        print(f"dpguard report: could not read: {problem}", file=sys.stderr)
    s = data["summary"]
    print(f"dpguard report: {s['violations']} violation(s), {s['unverifiable']} unverifiable, "
          f"{s['acknowledged']} acknowledged; cdk-nag {s['nag_violations']} violation(s)")
    for kind in ("html", "markdown", "json", "csv"):
        print(f"  {kind:<8} {paths[kind]}")
    return EXIT_CLEAN


def rules(args: argparse.Namespace) -> int:
    from .output import render_rules
    from .rules import catalogue

    color = not args.output and sys.stdout.isatty() and "NO_COLOR" not in os.environ
    write(render_rules(catalogue(), args.format, color=color), args.output)
    return EXIT_CLEAN


def main(argv: list[str] | None = None) -> int:
    from .engine.loader import InputError

    try:
        words = sys.argv[1:] if argv is None else argv
        # `dpguard scan ...`: only scan's parser (a word before the command, such as --help, needs all)
        args = build_parser(words[0] if words and words[0] in SUBCOMMANDS else None).parse_args(argv)
        if args.command == "scan":
            return scan(args)
        if args.command == "rules":
            return rules(args)
        if args.command == "report":
            return report(args)
        if args.command == "audit":
            return audit(args)
        if args.command == "access-review":
            return access_review(args)
        if getattr(args, "handler", None):
            return args.handler(args)
        build_parser().print_help()
        return EXIT_USAGE
    except UsageError as e:
        print(str(e), file=sys.stderr)
        return EXIT_USAGE
    except InputError as e:
        print(f"dpguard: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except ModuleNotFoundError as e:
        if e.name not in ("boto3", "botocore"):
            raise
        print("dpguard: this command calls AWS and needs boto3: pip install 'dpguard[aws]'", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return EXIT_CLEAN
    finally:
        if argv is None:
            # Run as the command, the process ends next. Python's last garbage collection at exit
            # would walk every object of the run (30 ms after a scan of 2,000 resources) to free
            # memory that the system takes back anyway; frozen objects are left out of it.
            gc.freeze()


if __name__ == "__main__":
    sys.exit(main())

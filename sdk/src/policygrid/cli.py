"""The `policygrid` command: validate, push, show, pull and run policies from a shell."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .archive import safe_extract
from .errors import InputInvalid, PolicyGridError
from .package import check_package_dir, digest_of, read_archive_or_folder, verify_digest, zip_code_folder
from .rule_runner import PolicyRunner, policy_uri
from .schema import check_policy_record


def _json_arg(text: str | None, what: str) -> Any:
    if text is None:
        return None
    source = text
    if text.startswith("@"):
        source = Path(text[1:]).read_text(encoding="utf-8")
    try:
        return json.loads(source)
    except json.JSONDecodeError as exc:
        raise InputInvalid(f"{what} is not valid JSON: {exc}", errors={what: [str(exc)]}) from None


def _load_record(path: str | None) -> dict[str, Any]:
    if not path:
        return {}
    record = _json_arg("@" + path, "record")
    if not isinstance(record, dict):
        raise InputInvalid("the record file must hold a JSON object", errors={"record": ["not an object"]})
    return record


def _print(value: Any) -> None:
    print(json.dumps(value, indent=2, sort_keys=False, default=str))


def _client(args: argparse.Namespace):
    from .client import PortalClient

    return PortalClient(args.portal_url, args.token)


# --- policy commands --------------------------------------------------------------------------------------


def cmd_validate(args: argparse.Namespace) -> int:
    from .loader import load_rule_class
    from .requirements import ensure_requirements

    record = _load_record(args.record)
    check_policy_record(record)
    data, folder = read_archive_or_folder(Path(args.path))
    workdir = None
    try:
        if data is not None:
            workdir = Path(tempfile.mkdtemp(prefix="policygrid-validate-"))
            safe_extract(data, workdir)
            folder = workdir
        check_package_dir(folder)
        report: dict[str, Any] = {"valid": True, "path": str(args.path)}
        if data is not None:
            report["digest"] = digest_of(data)
        else:
            report["digest"] = digest_of(zip_code_folder(folder))
        if args.input is not None:
            input_data = _json_arg(args.input, "input")
            requirements_dir = ensure_requirements(folder)
            rule_class = load_rule_class(folder, requirements_dir, reload=True)
            runner = PolicyRunner(
                record,
                rule_class,
                settings=_json_arg(args.settings, "settings"),
                parameters=_json_arg(args.parameters, "parameters"),
            )
            report["output"] = runner.eval(input_data)
        _print(report)
        return 0
    finally:
        if workdir is not None:
            shutil.rmtree(workdir, ignore_errors=True)


def cmd_push(args: argparse.Namespace) -> int:
    folder = Path(args.folder)
    record = _load_record(args.record)
    record.update({"name": args.name, "version": args.version, "release_tag": args.tag})
    check_policy_record(record)
    data = zip_code_folder(folder)
    with tempfile.TemporaryDirectory(prefix="policygrid-push-") as tmp:
        check_dir = Path(tmp) / "check"
        safe_extract(data, check_dir)
        check_package_dir(check_dir)
        archive = Path(tmp) / f"{args.name}-{args.version}-{args.tag}.zip"
        archive.write_bytes(data)
        client = _client(args)
        asset = client.upload_asset(archive, args.name, args.version, args.tag)
    public_url = asset.get("public_url") or (asset.get("data") or {}).get("public_url")
    if not public_url:
        raise PolicyGridError("the portal's upload answer has no public_url")
    record["code"] = public_url
    record["code_digest"] = digest_of(data)
    _print(client.create_policy(record))
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    _print(_client(args).get_policy(args.uri))
    return 0


def cmd_pull(args: argparse.Namespace) -> int:
    client = _client(args)
    record = client.get_policy(args.uri)
    data = client.download(record["code"])
    digest = verify_digest(data, record["code_digest"], record["code"]) if record.get("code_digest") else digest_of(data)
    out = Path(args.output or f"{record.get('name', 'policy')}-{record.get('version', '')}-{record.get('release_tag', '')}")
    if out.exists() and any(out.iterdir()):
        raise InputInvalid(f"'{out}' exists and is not empty", errors={"output": ["not empty"]})
    with tempfile.TemporaryDirectory(prefix="policygrid-pull-", dir=out.parent if out.parent.exists() else None) as tmp:
        unpacked = Path(tmp) / "package"
        safe_extract(data, unpacked)
        check_package_dir(unpacked)
        (unpacked / "record.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        if out.exists():
            out.rmdir()
        shutil.move(str(unpacked), out)
    _print({"path": str(out), "digest": digest, "policy_rule_uri": policy_uri(record)})
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from .evaluator import LocalPolicyEvaluator

    evaluator = LocalPolicyEvaluator(
        args.uri,
        parameters=_json_arg(args.parameters, "parameters"),
        settings=_json_arg(args.settings, "settings"),
        portal_url=args.portal_url,
        token=args.token,
        isolate=args.isolate,
        cache_dir=args.cache_dir,
        dry_run=args.dry_run,
    )
    try:
        _print(evaluator.execute_policy_rule(_json_arg(args.input, "input")))
    finally:
        evaluator.close()
    return 0


def _add_policy_commands(groups: argparse._SubParsersAction) -> None:
    policy = groups.add_parser("policy", help="validate, push, show, pull and run policies")
    commands = policy.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = commands.add_parser("validate", help="check a policy folder or archive (and optionally run it)")
    p.add_argument("path", help="a folder holding code/function.py, or an archive")
    p.add_argument("--record", help="a JSON file with the policy record (schemas, settings, parameters)")
    p.add_argument("--input", help="run the policy on this JSON input (or @file)")
    p.add_argument("--parameters", help="parameter overrides for --input, JSON or @file")
    p.add_argument("--settings", help="setting overrides for --input, JSON or @file")
    p.set_defaults(handler=cmd_validate)

    p = commands.add_parser("push", help="archive code/, upload it and register the policy")
    p.add_argument("folder", help="a folder holding code/function.py")
    p.add_argument("--name", required=True)
    p.add_argument("--version", required=True)
    p.add_argument("--tag", required=True, help="the release tag")
    p.add_argument("--record", help="a JSON file with the rest of the record (schemas, settings, …)")
    p.set_defaults(handler=cmd_push)

    p = commands.add_parser("show", help="print a policy's record")
    p.add_argument("uri")
    p.set_defaults(handler=cmd_show)

    p = commands.add_parser("pull", help="download a policy's package, verify its digest and unpack it")
    p.add_argument("uri")
    p.add_argument("-o", "--output", help="the folder to create (default <name>-<version>-<tag>)")
    p.set_defaults(handler=cmd_pull)

    p = commands.add_parser("run", help="run a registered policy in this process (Type 1)")
    p.add_argument("uri")
    p.add_argument("--input", required=True, help="the input, JSON or @file")
    p.add_argument("--parameters", help="parameter overrides, JSON or @file")
    p.add_argument("--settings", help="setting overrides, JSON or @file")
    p.add_argument("--isolate", action="store_true", help="run the policy in a child process with limits")
    p.add_argument("--dry-run", action="store_true",
                   help="try a draft or a version in review (otherwise only approved and deprecated versions run)")
    p.set_defaults(handler=cmd_run)


# Other command groups (e.g. `executor serve`) register themselves here: a function taking the
# sub-parsers object, adding its group and setting `handler` on each command.
def _add_executor_commands(groups: argparse._SubParsersAction) -> None:
    from .executor.cli import add_command_group  # the service's own module, imported only when asked for

    add_command_group(groups)


COMMAND_GROUPS: list[Callable[[argparse._SubParsersAction], None]] = [_add_policy_commands, _add_executor_commands]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="policygrid", description="PolicyGrid data-plane tool")
    parser.add_argument("--portal-url", help="the portal's address (default: $POLICYGRID_URL)")
    parser.add_argument("--token", help="API token (default: $POLICYGRID_TOKEN)")
    parser.add_argument("--cache-dir", help="package cache (default: $POLICYGRID_CACHE_DIR or ~/.cache/policygrid)")
    groups = parser.add_subparsers(dest="group", required=True, metavar="GROUP")
    for add_group in COMMAND_GROUPS:
        add_group(groups)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except PolicyGridError as exc:
        print(f"error ({exc.error_type}): {exc.message}", file=sys.stderr)
        for path, reasons in exc.errors.items():
            for reason in reasons:
                print(f"  {path}: {reason}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

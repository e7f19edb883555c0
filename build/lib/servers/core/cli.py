"""The serving CLI: ``serve``, ``servers``, ``config`` and ``ingest`` (``python -m servers ...``), plus
the commands capabilities add (``eval``).

Other packages add commands through ``extensions``: functions that receive the
subparsers and add their own, each with ``set_defaults(func=handler)`` where
``handler(args, settings) -> int``. The ``quiver`` console script is this CLI with the
host's ``ask``, ``chat`` and ``demo`` added (:mod:`host.cli`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from servers.core import client_configs
from servers.core.client_configs import CLIENTS, config_roots
from servers.core.errors import QuiverError
from servers.core.registry import server_names
from servers.core.settings import Settings, load_settings
from servers.eval import cli as eval_cli

Extension = Callable[[argparse._SubParsersAction], None]
CAPABILITY_COMMANDS: tuple[Extension, ...] = (eval_cli.register,)  # capabilities' own commands (quiver eval ...)
DESCRIPTION = "Quiver: MCP servers for LLM applications (serve them, configure clients, ingest files)."


def common_flags() -> argparse.ArgumentParser:
    """Flags every command takes (a parent parser)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", default=argparse.SUPPRESS, help="TOML config file (default: configs/quiver.toml)")
    common.add_argument("--data-dir", default=argparse.SUPPRESS, help="override data_dir")
    common.add_argument("--log-level", default=argparse.SUPPRESS, choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    return common


def _database_pair(text: str) -> tuple[str, str]:
    name, sep, url = text.partition("=")
    if not sep or not name or not url:
        raise argparse.ArgumentTypeError(f"expected NAME=URL_OR_PATH, got '{text}'")
    return name, url


def build_parser(extensions: Iterable[Extension] = ()) -> argparse.ArgumentParser:
    common = common_flags()
    parser = argparse.ArgumentParser(prog="quiver", description=DESCRIPTION, parents=[common])
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", parents=[common], help="run one MCP server (or all) over stdio or HTTP")
    serve.add_argument("name", choices=[*server_names(), "all"])
    serve.add_argument("--transport", choices=["stdio", "http"], default="stdio")
    serve.add_argument("--host", default=argparse.SUPPRESS, help="HTTP bind address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=argparse.SUPPRESS, help="HTTP port (default 8765)")
    serve.add_argument("--allowed-host", action="append", default=argparse.SUPPRESS,
                       help="Host header value accepted over HTTP (repeatable; 'name:*' = any port)")
    serve.add_argument("--root", action="append", default=argparse.SUPPRESS,
                       help="folder whose files the server may read (repeatable; replaces the configured roots)")
    serve.add_argument("--database", action="append", type=_database_pair, default=argparse.SUPPRESS,
                       metavar="NAME=URL_OR_PATH", help="text2sql: add a database (repeatable)")
    serve.set_defaults(func=_serve)

    config = sub.add_parser("config", parents=[common], help="print (or --write) a ready MCP client config for every server")
    config.add_argument("client", choices=list(CLIENTS))
    config.add_argument("--transport", choices=["stdio", "http"], default="stdio",
                        help="stdio: the client starts each server; http: the client connects to one running "
                             "`quiver serve all --transport http` (several clients, one knowledge base store)")
    config.add_argument("--server", action="append", default=None, metavar="NAME",
                        help="only this server (repeatable); over HTTP one --server means `quiver serve NAME` at /mcp")
    config.add_argument("--root", action="append", default=argparse.SUPPRESS,
                        help="folder the servers may read (repeatable; default: the configured roots, else this directory)")
    config.add_argument("--write", nargs="?", const="", default=None, metavar="FILE",
                        help="merge into the client's config file (default: its usual place) instead of printing: "
                             "Quiver's entries are replaced, everything else is kept (FILE.bak keeps the old one)")
    config.set_defaults(func=_config)

    ingest = sub.add_parser("ingest", parents=[common], help="ingest files or folders into a knowledge base, with a progress bar")
    ingest.add_argument("kb", help="knowledge base name (created if missing)")
    ingest.add_argument("paths", nargs="+", help="files, folders or file:// URIs under the roots")
    ingest.add_argument("--strategy", choices=["fixed", "recursive", "structure", "semantic"], default=None)
    ingest.add_argument("--chunk-size", type=int, default=None)
    ingest.add_argument("--chunk-overlap", type=int, default=None)
    ingest.add_argument("--tag", action="append", default=[], help="tag every chunk (repeatable)")
    ingest.add_argument("--root", action="append", default=argparse.SUPPRESS, help="allowed root (repeatable)")
    ingest.set_defaults(func=_ingest)

    servers = sub.add_parser("servers", parents=[common], help="list the servers this install provides")
    servers.set_defaults(func=_servers)

    for extend in (*CAPABILITY_COMMANDS, *extensions):
        extend(sub)
    return parser


def overrides_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """Settings overrides named by CLI flags (flags win over env and file)."""
    out: dict[str, Any] = {}
    given = vars(args)
    if "data_dir" in given:
        out["data_dir"] = given["data_dir"]
    if "log_level" in given:
        out["log_level"] = given["log_level"]
    if "root" in given:
        out["roots"] = given["root"]
    http = {key: given[flag] for key, flag in (("host", "host"), ("port", "port"), ("allowed_hosts", "allowed_host")) if flag in given}
    if http:
        out["http"] = http
    if "database" in given:
        out["text2sql"] = {"databases": dict(given["database"])}
    return out


def settings_from_args(args: argparse.Namespace) -> Settings:
    """Settings from the file/environment with the flags on top (``--database`` adds to the configured ones)."""
    return load_settings(getattr(args, "config", None), overrides_from_args(args))


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    from servers.core.serving import configure_logging, run_http, run_stdio

    configure_logging(settings.log_level)
    if args.transport == "stdio":
        if args.name == "all":
            raise QuiverError("'serve all' needs --transport http (stdio carries one server per process)")
        run_stdio(args.name, settings)
    else:
        run_http(args.name, settings)
    return 0


def _config(args: argparse.Namespace, settings: Settings) -> int:
    config_path = Path(args.config).resolve() if getattr(args, "config", None) else None
    roots = config_roots(settings.roots) if args.transport == "stdio" else []
    config = client_configs.build_config(args.client, args.transport, settings, config_path, roots=roots,
                                         servers=args.server)
    if args.write is None:
        sys.stdout.write(client_configs.render(args.client, args.transport, settings, config_path, roots=roots,
                                               servers=args.server))
    else:
        target = Path(args.write).expanduser() if args.write else client_configs.default_file(args.client)
        written = client_configs.merge_into(target.resolve(), args.client, config)
        print(f"quiver: wrote {len(next(iter(config.values())))} server(s) into {written}", file=sys.stderr)
    commands = client_configs.cli_commands(args.client, config)
    if commands:
        print("quiver: or add them with the client's own command:\n  " + "\n  ".join(commands), file=sys.stderr)
    if args.transport == "http":
        single = args.server[0] if args.server and len(args.server) == 1 else "all"
        try:
            flags = "".join(f" --root {r}" for r in config_roots(settings.roots))
        except QuiverError:
            flags = " --root FOLDER"
        token = " (with QUIVER_HTTP_TOKEN set in the server's and the client's environment)" if settings.http.token else ""
        print(f"quiver: start the server first: quiver serve {single} --transport http{flags}{token}", file=sys.stderr)
    else:
        print("quiver: several clients sharing one knowledge base? Milvus Lite is one process per file: use "
              "--transport http with one `quiver serve all --transport http`", file=sys.stderr)
    return 0


def _ingest(args: argparse.Namespace, settings: Settings) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from servers.retrieval import api

    console = Console(stderr=True)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console) as bar:
        task = bar.add_task(f"ingest → {args.kb}", total=None)

        def progress(done: float, total: float | None, message: str | None = None) -> None:
            bar.update(task, completed=done, total=total, description=f"ingest → {args.kb} {message or ''}"[:80])

        report = api.ingest(settings, args.kb, paths=args.paths, strategy=args.strategy, chunk_size=args.chunk_size,
                            chunk_overlap=args.chunk_overlap, tags=args.tag, progress=progress)
    print(report.model_dump_json(indent=2))
    return 1 if report.failed and not (report.added or report.replaced or report.unchanged) else 0


def _servers(args: argparse.Namespace, settings: Settings) -> int:
    for name in server_names():
        print(name)
    return 0


def main(argv: Sequence[str] | None = None, extensions: Iterable[Extension] = ()) -> int:
    args = build_parser(extensions).parse_args(argv)
    try:
        settings = settings_from_args(args)
        return int(args.func(args, settings) or 0)
    except QuiverError as exc:
        print(f"quiver: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130

"""Command line: `gateway [serve] [--config PATH] [--host H] [--port P]` (also `python -m gateway`)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import sys
from pathlib import Path

import structlog
from aiohttp import web

from gateway import __version__
from gateway.settings import ConfigError, Settings, load_settings

log = structlog.get_logger("gateway")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gateway", description="Contact-center gateway")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command")
    serve = sub.add_parser("serve", help="run the gateway (the default command)")
    for p in (parser, serve):
        p.add_argument("--config", type=Path, default=None, help="config file (default: embedded defaults)")
        p.add_argument("--host", default=None, help="listen address (overrides server.host)")
        p.add_argument("--port", type=int, default=None, help="listen port (overrides server.port)")
        p.add_argument(
            "--wait-for-engines",
            type=float,
            default=None,
            metavar="SECONDS",
            help="retry an unreachable store or Redis at start this long (overrides cluster.wait_for_engines_s)",
        )
    hasher = sub.add_parser(
        "hash-password",
        help="print the hash of a password (or, with --token, of a bearer token) for config.yaml",
        description="Reads the secret from standard input (or asks for it on a terminal) and prints "
        "the value for users[].password_hash (or users[].token_hash with --token).",
    )
    hasher.add_argument("--token", action="store_true", help="hash a bearer token (SHA-256) instead of a password")
    checker = sub.add_parser(
        "check-config",
        help="validate a config file and say exactly what is wrong and where",
        description="Exit 0 and a summary when the file is valid; exit 2 and one line per problem otherwise.",
    )
    checker.add_argument("path", type=Path, nargs="?", default=None, help="the config file (default: config.yaml)")
    # As every other verb takes it; its own dest, so that `gateway --config F check-config` is not overwritten.
    checker.add_argument("--config", dest="check_config", type=Path, default=None, help="the config file, as PATH")
    listener = sub.add_parser(
        "listen",
        help="subscribe to channels and print one JSON line per message (an aiocometd-ng client)",
        description="Prints every message as a JSON line on stdout; status lines go to stderr.",
    )
    listener.add_argument("channels", nargs="+", metavar="CHANNEL", help="channels or patterns, e.g. /v2/me/**")
    listener.add_argument(
        "--url", required=True, help="the Bayeux endpoint, e.g. http://127.0.0.1:8080/api/v2/notifications"
    )
    listener.add_argument("--user", help="user name (HTTP Basic, with --password)")
    listener.add_argument("--password", help="password of --user")
    listener.add_argument("--token", help="bearer token (instead of --user/--password)")
    listener.add_argument("--transport", choices=["websocket", "long-polling"], default="websocket")
    listener.add_argument("--count", type=int, default=None, help="exit after this many messages")
    listener.add_argument(
        "--replay-from",
        type=_replay_from,
        default=None,
        metavar="ID|-1|-2",
        help="replay what came after this replayId (-2: everything retained, -1: only new); "
        "each line then carries the message's replayId",
    )
    return parser


def _replay_from(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("a replayId, -1 or -2") from None
    if value < -2:
        raise argparse.ArgumentTypeError("a replayId, -1 or -2")
    return value


def check_config(path: Path) -> int:
    """The `check-config` command."""
    try:
        settings = load_settings(path)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    s = settings
    from gateway.store.sql import StoreError

    try:
        used = engines(s)
    except StoreError as exc:
        print(f"{path}: {exc}", file=sys.stderr)
        return 2
    wait = s.cluster.wait_for_engines_s
    print(
        f"{path}: ok: {len(s.users)} users, {len(s.campaigns)} campaigns, {len(s.waitfield.queues)} waiting-field "
        f"queues; Bayeux at {s.bayeux.path}; listens on {s.server.host}:{s.server.port}; "
        + "; ".join(f"{part}={engine}" for part, engine in used.items())
        + (f"; waits up to {wait:g} s for them at start" if wait > 0 else "")
    )
    return 0


def engines(s: Settings) -> dict[str, str]:
    """The engine behind each part of a node's state, URLs without passwords (check-config, the start log)."""
    from gateway.redis_pool import masked
    from gateway.store.sql import describe

    # Presence and GWS web sessions live in broker.url's Redis whenever there is one (app.py).
    redis = f"redis ({masked(s.broker.url)})" if s.broker.url else "memory"
    registry_url = s.correlation.url or s.broker.url
    registry = f"redis ({masked(registry_url)})" if s.correlation.backend == "redis" and registry_url else "memory"
    store = describe(s.storage.url)
    if not s.replay.enabled:
        log = "none"
    elif s.replay.backend == "redis" and s.broker.url:  # the settings refuse it without broker.url
        log = f"redis streams ({masked(s.broker.url)}), outbox in {store}"
    else:
        log = store
    return {
        "store": store,
        "broker": redis,
        "correlation": registry,
        "presence": redis,
        "web_sessions": redis,
        "log": log,
    }


def hash_password(token: bool) -> int:
    """The `hash-password` command."""
    import getpass

    from gateway.credentials import hash_password as scrypt_hash
    from gateway.credentials import hash_token

    kind = "token" if token else "password"
    if sys.stdin.isatty():
        secret = getpass.getpass(f"{kind}: ")
        if getpass.getpass(f"{kind} again: ") != secret:
            print("gateway: the two entries differ", file=sys.stderr)
            return 2
    else:
        secret = sys.stdin.readline().rstrip("\r\n")
    if not secret or (token and len(secret) < 16):
        print(
            f"gateway: the {kind} must not be empty" + (" (tokens: 16 characters at least)" if token else ""),
            file=sys.stderr,
        )
        return 2
    print(hash_token(secret) if token else scrypt_hash(secret))
    return 0


def _settings(args: argparse.Namespace) -> Settings:
    overrides = {
        "server.host": args.host,
        "server.port": args.port,
        "cluster.wait_for_engines_s": args.wait_for_engines,
    }
    return load_settings(args.config, **overrides)


def serve(settings: Settings) -> None:
    """Run the server until SIGINT/SIGTERM."""
    from gateway.log import configure

    configure(settings.logging)
    log.info("engines", **engines(settings), wait_for_engines_s=settings.cluster.wait_for_engines_s)
    loop = _event_loop(settings.server.event_loop)
    asyncio.set_event_loop(loop)
    main_task = loop.create_task(_serve(settings))
    try:
        loop.run_until_complete(main_task)
    except (web.GracefulExit, KeyboardInterrupt):
        pass
    finally:
        # As aiohttp's run_app: cancelling the main task runs its cleanup (graceful shutdown).
        if not main_task.done():
            main_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                loop.run_until_complete(main_task)
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
    log.info("stopped")


async def _serve(settings: Settings) -> None:
    # aiohttp's run_app, with our site: it puts the lean long-polling path in front of aiohttp.
    from gateway.app import create_app, make_site

    runner = web.AppRunner(
        create_app(settings),
        access_log=None,
        handle_signals=True,
        shutdown_timeout=settings.server.shutdown_timeout_s,
        keepalive_timeout=settings.server.keepalive_timeout_s,
    )
    try:
        # Inside the try: a resource that fails to start leaves the ones started before it stopped again.
        await runner.setup()
        site = make_site(runner, settings.server.host, settings.server.port)
        await site.start()
        # Everything built so far lives as long as the process: keep it out of every full collection.
        gc.freeze()
        log.info("listening", url=site.name)
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def _event_loop(choice: str) -> asyncio.AbstractEventLoop:
    """A new event loop of the configured kind (uvloop roughly halves the cost of each request and frame)."""
    if choice in ("auto", "uvloop"):
        try:
            import uvloop
        except ImportError:
            if choice == "uvloop":
                raise SystemExit("gateway: server.event_loop is uvloop, but uvloop is not installed") from None
        else:
            loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
            return loop
    return asyncio.new_event_loop()


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `gateway` console script."""
    args = _parser().parse_args(argv)
    if args.command == "hash-password":
        return hash_password(args.token)
    if args.command == "check-config":
        given = [p for p in (args.path, args.check_config, args.config) if p is not None]
        if len(set(given)) > 1:
            print("gateway check-config: name the config file once (PATH or --config)", file=sys.stderr)
            return 2
        return check_config(given[0] if given else Path("config.yaml"))
    if args.command == "listen":
        from gateway.listen import authorization, run

        if args.token and args.user:
            print("gateway listen: give --user/--password or --token, not both", file=sys.stderr)
            return 2
        header = authorization(args.user, args.password, args.token)
        return run(
            args.url,
            args.channels,
            header=header,
            transport=args.transport,
            count=args.count,
            replay_from=args.replay_from,
        )
    try:
        settings = _settings(args)
    except ConfigError as exc:
        print(f"gateway: {exc}", file=sys.stderr)
        return 2
    if args.command in (None, "serve"):
        from gateway.store.sql import StoreError

        try:
            serve(settings)
        except StoreError as exc:
            # Never half-started: nothing listens without its store (the error names the database).
            log.error("store_unavailable", error=str(exc))
            print(f"gateway: cannot start: {exc}", file=sys.stderr)
            return 1
        except ConnectionError as exc:  # a Redis (broker.url, correlation.url) unreachable at start: say which
            log.error("redis_unavailable", error=str(exc))
            print(f"gateway: cannot start: {exc}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

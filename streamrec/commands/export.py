"""``streamrec export --model DIR``: export a trained model to a verified ONNX artifact in the registry."""

from __future__ import annotations

import argparse
from pathlib import Path

from streamrec.config import Settings
from streamrec.errors import UserError

HELP = "export a trained model to a verified ONNX artifact in the registry"
# The settings it reads (its --help lists their flags; docs/configuration.md).
SETTINGS = ("data_dir", "registry", "redis_tls", "k", "pool", "session_length", "device", "hybrid", "serving")
# Real sessions for the parity check: enough to cover many lengths, few enough to stay ~1 s.
REAL_SESSIONS = 64


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, type=Path, metavar="DIR", help="model directory (streamrec train)")
    parser.add_argument(
        "--out",
        default=None,
        metavar="REGISTRY",
        help="registry: directory, file:// or redis:// URL (default --registry-url)",
    )
    parser.add_argument("--fp16", action="store_true", default=None, help="also export the fp16 GPU variant")
    parser.add_argument(
        "--k",
        type=int,
        default=None,
        help="top-K exported (default: the candidate pool, --k x --pool, at most the catalogue)",
    )
    parser.add_argument("--parent", default=None, help="version this one was fine-tuned from")
    parser.add_argument("--events", type=Path, default=None, help="events file whose sessions join the parity check")
    parser.add_argument("--no-prune", action="store_true", help="keep all versions (default: keep --registry-keep)")


def _real_sessions(path: Path | None, length: int) -> list[tuple[list[str], list[str]]]:
    if path is None:
        return []
    from streamrec.datasets import load_events

    sessions = []
    for events in load_events(path).by_user().values():
        tail = events[-length:]
        sessions.append(([e.item_id for e in tail], [e.type for e in tail]))
        if len(sessions) == REAL_SESSIONS:
            break
    return sessions


def run(args: argparse.Namespace, settings: Settings) -> int:
    from streamrec.export.exporter import export_model_dir
    from streamrec.serving.artifact import ArtifactError
    from streamrec.serving.registry import open_registry
    from streamrec.text_models import search_dirs

    if not args.model.is_dir():
        raise UserError(f"--model {args.model}: no such directory")
    try:
        registry = open_registry(
            args.out if args.out is not None else settings.registry.url, settings.data_dir, settings.redis_tls
        )
    except ValueError as exc:
        raise UserError(str(exc)) from None
    fp16 = settings.registry.fp16 if args.fp16 is None else args.fp16
    try:
        result = export_model_dir(
            args.model,
            registry,
            k=args.k or settings.k,
            pool=1 if args.k else settings.pool,
            fp16=fp16,
            int8=settings.registry.int8,
            parent=args.parent,
            ann_min_items=settings.serving.ann_min_items,
            real_sessions=_real_sessions(args.events, settings.session_length),
            text_dirs=search_dirs(settings.encoder.text_model_dir),
            text_cache=settings.data_dir / "cache",
            progress=lambda msg: print(f"  {msg}", flush=True),
        )
    except ArtifactError as exc:
        raise UserError(f"export refused, nothing written: {exc}") from None
    for r in result.parity:
        print(
            f"parity {r.variant}: {r.sessions} sessions, max abs err embedding {r.max_abs_err_embedding:.2e}, "
            f"scores {r.max_abs_err_scores:.2e}, top-K overlap {r.topk_overlap:.2%} "
            f"(untied {r.untied_topk_overlap:.0%})"
        )
    sizes = ", ".join(f"{name} {size / 1e6:.2f} MB" for name, size in sorted(result.size_bytes.items()))
    print(f"version {result.ref.version}  sha256 {result.ref.sha256}")
    print(f"uri     {result.ref.uri}")
    print(f"files   {sizes}  ({result.seconds:.1f}s)")
    if not args.no_prune:
        pruned = registry.prune(settings.registry.keep, protect=(result.ref.version,))
        if pruned:
            print(f"pruned  {', '.join(pruned)} (keeping {settings.registry.keep})")
    return 0

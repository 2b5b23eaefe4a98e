"""`edgedistill bundle`: check a bundle against its manifest (and re-run its artifacts), pack it
into one archive to ship, unpack a received one."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from edgedistill.audit.rerun import RerunReport, rerun_bundle
from edgedistill.bundle.pack import BundleNotVerified, pack_bundle, unpack_bundle
from edgedistill.bundle.verify import verify_bundle
from edgedistill.cli._common import JsonOpt, emit_json, handle_errors, stderr

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)


@app.callback()
def bundle() -> None:
    """Work with the bundle/ a run writes: artifacts, manifest.json, model card."""


BundleDirArg = Annotated[
    Path,
    typer.Argument(
        metavar="DIR", help="A bundle dir (holds manifest.json) or a run dir holding bundle/."
    ),
]


@app.command("verify")
@handle_errors
def verify(
    directory: BundleDirArg,
    run: Annotated[
        bool,
        typer.Option(
            "--run",
            help="Also re-run every artifact whose runtime runs here on the recorded validation "
            "sample and compare with the recorded outputs (exit 1 when one differs, or when the "
            "manifest records no sample).",
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Check every file against manifest.json: exit 0 intact, 1 corrupt, 2 no/bad manifest."""

    report = verify_bundle(directory)
    document: dict[str, Any] = report.to_dict()
    problems = list(report.problems)
    rerun = None
    if run:
        rerun = rerun_bundle(report.bundle_dir)
        problems += [p for p in rerun.problems if p not in problems]
        document.update(ok=not problems, problems=problems, run=rerun.to_dict())
    if as_json:
        emit_json(document)
    else:
        _print_report(not problems, report.bundle_dir, report.checked, problems)
        if rerun is not None:
            _print_rerun(rerun)
    if problems:
        raise typer.Exit(1)


@app.command("pack")
@handle_errors
def pack(
    directory: BundleDirArg,
    out: Annotated[
        Path | None,
        typer.Option(help="The archive to write (default: DIR's name + .bundle.tar.gz beside it)."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Verify the bundle, then write it as one reproducible .tar.gz, manifest.json first.

    Exit 0 packed, 1 the bundle does not verify (nothing written), 2 no/bad bundle or --out.
    """

    try:
        result = pack_bundle(directory, out)
    except BundleNotVerified as refused:
        _refused(refused, as_json)
    if as_json:
        emit_json(result.to_dict())
        return
    Console(highlight=False).print(
        f"[bold green]Packed:[/] {result.members - 1} files and manifest.json of "
        f"{escape(str(result.bundle_dir))} into {escape(str(result.archive))} "
        f"({result.bytes} bytes, sha256 {result.sha256})",
        soft_wrap=True,
    )


@app.command("unpack")
@handle_errors
def unpack(
    archive: Annotated[
        Path, typer.Argument(metavar="FILE", help="A bundle archive written by `bundle pack`.")
    ],
    directory: Annotated[
        Path, typer.Argument(metavar="DIR", help="Where to put the bundle: new or empty.")
    ],
    as_json: JsonOpt = False,
) -> None:
    """Extract a bundle archive into a new or empty DIR and verify it.

    Exit 0 done, 1 the bundle inside does not verify, 2 not an archive this accepts (links,
    devices, paths leaving DIR, members the manifest does not list, manifest not first) or DIR
    not empty. Nothing is written unless it verifies.
    """

    try:
        report = unpack_bundle(archive, directory)
    except BundleNotVerified as refused:
        _refused(refused, as_json)
    if as_json:
        emit_json({**report.to_dict(), "archive": str(archive)})
    else:
        _print_report(True, report.bundle_dir, report.checked, [])


def _refused(refused: BundleNotVerified, as_json: bool) -> NoReturn:
    """Print why the bundle did not verify (problems each name a file), then exit 1."""
    if as_json:
        emit_json(refused.report.to_dict())
    else:
        stderr.print(f"[bold red]error:[/] {escape(str(refused))}", highlight=False)
        _print_report(False, refused.report.bundle_dir, refused.report.checked,
                      refused.report.problems)  # fmt: skip
    raise typer.Exit(1)


def _print_report(ok: bool, bundle_dir: Path, checked: int, problems: list[str]) -> None:
    console = Console(highlight=False)
    where = escape(str(bundle_dir))
    if ok:
        console.print(f"[bold green]OK:[/] {checked} files verified in {where}", soft_wrap=True)
        return
    console.print(f"[bold red]FAILED:[/] {len(problems)} problem(s) in {where}", soft_wrap=True)
    for problem in problems:
        console.print(f"  - {escape(problem)}", soft_wrap=True)


_STATUS_STYLE = {
    "matches": "green",
    "differs": "bold red",
    "fails": "bold red",
    "skipped": "yellow",
    "not recorded": "yellow",
}


def _print_rerun(rerun: RerunReport) -> None:
    console = Console(highlight=False)
    if rerun.sample is None:
        console.print("Re-run: no validation sample recorded, nothing re-run")
        return
    console.print(f"Re-run on {escape(rerun.sample)}:")
    for result in rerun.artifacts:
        style = _STATUS_STYLE[result.status]
        ran = result.runtime if result.status == "matches" else None
        console.print(
            f"  {escape(result.path)}: [{style}]{result.status}[/]: {escape(result.detail)}"
            + (f" (run with {escape(ran)})" if ran else ""),
            soft_wrap=True,
        )
    if all(result.status in ("skipped", "not recorded") for result in rerun.artifacts):
        console.print("  (nothing was re-run on this host)")

"""The ``chatrec`` command group: global flags, then each command group registers itself."""

from __future__ import annotations

import logging
import typing

import click

from chatrec import __version__
from chatrec.cli import chat as chat_commands
from chatrec.cli import eval as eval_commands
from chatrec.cli import importers as import_commands
from chatrec.cli import kb as kb_commands
from chatrec.cli import learn as learn_commands
from chatrec.cli import metrics as metrics_commands
from chatrec.cli import router as router_commands
from chatrec.cli import serve as serve_commands
from chatrec.cli import train as train_commands
from chatrec.cli.context import check_settings_sources
from chatrec.config import LLMBackendName, apply_offline_env
from chatrec.extras import as_missing_extra
from chatrec.types import Unavailable


class StartupProblem(click.ClickException):
    """What is wrong and the command that fixes it, on one line; exit code 2, no traceback."""

    exit_code = 2


class ChatrecGroup(click.Group):
    """A command that needs an optional extra that is not installed ends with its ``pip install`` line
    (whether the import went through :func:`chatrec.extras.require` or not); a model, adapter or
    index that cannot be loaded (:class:`~chatrec.types.Unavailable`) ends with one line saying
    what is wrong and how to fix it, exit code 2."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except Unavailable as exc:
            raise StartupProblem(str(exc)) from exc
        except ImportError as exc:
            missing = as_missing_extra(exc, f"chatrec {ctx.invoked_subcommand}" if ctx.invoked_subcommand else None)
            if missing is None:
                raise
            raise click.ClickException(str(missing)) from exc


@click.group(cls=ChatrecGroup)
@click.version_option(__version__, "--version", prog_name="chatrec", message="%(prog)s %(version)s")
@click.option(
    "--config", type=click.Path(dir_okay=False), help="TOML settings file (also CHATREC_CONFIG); it must exist."
)
@click.option("--kb", type=click.Path(file_okay=False), help="knowledge-base folder [kb]")
@click.option("--data-dir", type=click.Path(file_okay=False), help="state folder [.chatrec]")
@click.option("--backend", type=click.Choice(typing.get_args(LLMBackendName)), help="LLM backend")
@click.option("--model", help="LLM: Hugging Face id or local folder (default: embedded SmolLM2)")
@click.option("-v", "--verbose", is_flag=True)
@click.pass_context
def main(ctx: click.Context, config, kb, data_dir, backend, model, verbose) -> None:
    """chatrec: grounded customer-service and recommendation chat.

    Settings: defaults < the TOML file (--config or CHATREC_CONFIG) < CHATREC_* variables
    (CHATREC_SECTION__KEY) < these flags and each command's flags."""
    check_settings_sources(config)
    apply_offline_env()
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    ctx.obj = {"config": config, "kb": kb, "data_dir": data_dir, "backend": backend, "model": model}


for _commands in (
    kb_commands,
    chat_commands,
    serve_commands,
    import_commands,
    train_commands,
    router_commands,
    eval_commands,
    metrics_commands,
    learn_commands,
):
    _commands.register(main)

if __name__ == "__main__":  # pragma: no cover
    main()

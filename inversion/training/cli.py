"""``python -m inversion train STEP ...`` — the training commands.

Steps: ``generator`` (StyleGAN2), ``classifier`` (attribute classifier on real labels),
``directions`` (InterFaceGAN boundaries + GANSpace, and the edit catalog), ``encoder``
(MambaStyle encoder + Fuser, or the pSp baseline with ``--arch psp``), ``recipe`` (the
whole demo, end to end). Each step's module provides ``add_arguments``/``run``.
"""

from __future__ import annotations

import argparse
import importlib

__all__ = ["STEPS", "add_arguments", "run"]

STEPS = {
    "generator": ("inversion.training.train_generator", "train the StyleGAN2 generator"),
    "classifier": ("inversion.training.classifier", "train the attribute classifier"),
    "directions": ("inversion.training.directions", "fit edit directions and the catalog"),
    "encoder": ("inversion.training.train_encoder", "train an encoder (+ Fuser) or pSp"),
    "recipe": ("inversion.training.recipe", "run the whole demo recipe end to end"),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    import sys

    sub = parser.add_subparsers(dest="step", metavar="STEP", required=True)
    argv = sys.argv[1:]
    for name, (module, help_text) in STEPS.items():
        sp = sub.add_parser(name, help=help_text, description=help_text)
        # import a step's module only when it is the one being run (fast --help)
        if name in argv:
            importlib.import_module(module).add_arguments(sp)
        sp.set_defaults(_step_module=module)


def run(args: argparse.Namespace) -> int:
    return int(importlib.import_module(args._step_module).run(args) or 0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m inversion.training")
    sub = parser.add_subparsers(dest="step", metavar="STEP", required=True)
    for name, (module, help_text) in STEPS.items():
        sp = sub.add_parser(name, help=help_text)
        importlib.import_module(module).add_arguments(sp)
        sp.set_defaults(_step_module=module)
    return run(parser.parse_args(argv))

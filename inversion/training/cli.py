"""``python -m inversion train STEP ...`` — the training commands.

Steps: ``generator`` (StyleGAN2), ``classifier`` (attribute classifier on real labels),
``directions`` (InterFaceGAN boundaries + GANSpace, and the edit catalog), ``encoder``
(MambaStyle encoder + Fuser, or the pSp baseline with ``--arch psp``), ``recipe`` (the
whole demo, end to end), ``adapt`` (fine-tune a bundle on a folder of unlabelled photos
into a new bundle). Each step's module provides ``add_arguments``/``run``.

The ``train`` parser only takes the step's name and hands the rest of the arguments to
the step's own parser, built in :func:`run`: so only the chosen step's module is
imported, and the parse depends on the arguments given (``main(argv)``), never on
``sys.argv``.
"""

from __future__ import annotations

import argparse
import importlib

__all__ = ["STEPS", "add_arguments", "run", "main"]

STEPS = {
    "generator": ("inversion.training.train_generator", "train the StyleGAN2 generator"),
    "classifier": ("inversion.training.classifier", "train the attribute classifier"),
    "directions": ("inversion.training.directions", "fit edit directions and the catalog"),
    "perceptual": (
        "inversion.training.perceptual",
        "train the perceptual-loss network (LPIPS-style, on Fashion-MNIST)",
    ),
    "encoder": ("inversion.training.train_encoder", "train an encoder (+ Fuser) or pSp"),
    "recipe": ("inversion.training.recipe", "run the whole demo recipe end to end"),
    "adapt": ("inversion.training.adapt", "adapt a bundle to an unlabelled photo folder"),
}
PROG = "python -m inversion train"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    steps = "; ".join(f"{name}: {help_text}" for name, (_, help_text) in STEPS.items())
    parser.add_argument("step", metavar="STEP", choices=list(STEPS), help=steps)
    parser.add_argument(
        "step_args",
        nargs=argparse.REMAINDER,
        metavar="...",
        help="the step's options (`STEP --help` lists them)",
    )


def run(args: argparse.Namespace) -> int:
    module_name, help_text = STEPS[args.step]
    module = importlib.import_module(module_name)
    parser = argparse.ArgumentParser(prog=f"{PROG} {args.step}", description=help_text)
    module.add_arguments(parser)
    step_args = parser.parse_args(args.step_args)
    step_args._argv = ["train", args.step, *args.step_args]  # recorded in provenance
    return int(module.run(step_args) or 0)


def main(argv: list[str] | None = None) -> int:
    """``python -m inversion.training STEP ...`` (same as ``python -m inversion train``)."""
    parser = argparse.ArgumentParser(prog="python -m inversion.training")
    add_arguments(parser)
    return run(parser.parse_args(argv))

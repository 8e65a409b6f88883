from __future__ import annotations

import argparse

from inversion.training import recipe


def _args(**kw):
    p = argparse.ArgumentParser()
    recipe.add_arguments(p)
    return p.parse_args([f"--{k.replace('_', '-')}={v}" for k, v in kw.items()])


def test_stage_commands_are_project_commands():
    cmds = recipe.stage_commands(_args(run="R", encoder_steps=7))
    assert set(cmds) == set(recipe.STAGES)
    for c in cmds.values():
        assert c[:3] == ["python", "-m", "inversion"]
    # same data, steps and seed for our encoder and the pSp baseline
    enc, psp = cmds["encoder"], cmds["psp"]
    assert enc[enc.index("--arch") + 1] == "mambastyle" and psp[psp.index("--arch") + 1] == "psp"
    strip = lambda c: [x for x in c if x not in ("mambastyle", "psp", "R/encoder", "R/psp")]  # noqa: E731
    assert strip(enc) == strip(psp)
    assert enc[enc.index("--steps") + 1] == "7"
    assert "R/generator/generator.pt" in cmds["directions"]


def test_parallel_stages_count_once():
    state = {
        "stages": {
            "generator": {"wall_s": 10.0},
            "encoder": {"wall_s": 5.0, "parallel": True},
            "psp": {"wall_s": 5.0, "parallel": True},
            "evaluate": {"wall_s": 1.0},
        }
    }
    assert recipe._total(state) == 16.0

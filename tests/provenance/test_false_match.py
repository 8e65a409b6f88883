"""The false-match measurement: its unrelated images, its counting and its confidence bound.

No database: `false_match.run` is what `manage.py provenance robustness` reports as the
false-match rate (docs/provenance.md), so it must count a real near-duplicate and report
the exact binomial bound for the count it reached."""

from __future__ import annotations

import numpy as np
import pytest

from editplatform.provenance import false_match, fingerprint, unrelated


def test_the_upper_bound_is_the_exact_binomial_one():
    # 0 in n: 1 - 0.05^(1/n), about the rule of three
    assert false_match.upper_bound(0, 3000) == pytest.approx(9.98e-4, rel=1e-3)
    assert false_match.upper_bound(0, 10_000) < 3e-4
    # 1 in 100: the Clopper-Pearson one-sided 95 % bound is 0.0466
    assert false_match.upper_bound(1, 100) == pytest.approx(0.0466, abs=2e-4)
    assert false_match.upper_bound(5, 5) == 1.0


def test_unrelated_images_are_reproducible_by_index_and_varied():
    sources = unrelated.Sources()  # no scikit-image data, no pipeline outputs: fallbacks
    first = [unrelated.image(i, sources) for i in range(20)]
    again = unrelated.image(13, sources)
    assert np.array_equal(np.asarray(first[13]), np.asarray(again))
    assert {unrelated.source_of(i) for i in range(20)} == set(unrelated.SCHEDULE)
    assert all(image.mode == "RGB" and min(image.size) >= 64 for image in first)
    prints = [fingerprint.compute(image).pdq for image in first]
    assert len(set(prints)) == len(prints)  # twenty different pictures


def test_a_released_lookalike_counts_as_a_false_match_and_the_rest_do_not():
    sources = unrelated.Sources()
    # pretend unrelated image 12 (a generated scene) had been released: its prints are stored
    stored = [fingerprint.compute(unrelated.image(12, sources))]
    report = false_match.run({0x1234ABCD: 0}, stored, 14, sources, workers=1)
    assert report["checked"] == 14
    assert report["false_matches"] == 1
    assert report["fingerprint_matches"] == 1
    assert report["examples"][0]["index"] == 12 and report["examples"][0]["pdq"] == 0
    assert report["watermark_claims"] == 0  # never-marked images give no key
    assert report["upper_95"] == pytest.approx(false_match.upper_bound(1, 14))


def test_the_run_stops_at_its_time_limit_with_the_count_it_reached():
    report = false_match.run({}, [], 50, unrelated.Sources(), workers=2, max_seconds=0.0)
    assert 1 <= report["checked"] < 50
    assert report["upper_95"] == pytest.approx(false_match.upper_bound(0, report["checked"]))

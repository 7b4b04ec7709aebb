"""Unknown arguments are errors that name them and list the accepted ones (no silent ignore)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from langchain_selfamplify import (
    AmplifiedPrompt,
    MCQExample,
    RationaleGenerator,
    SelfAmplifySelector,
)
from langchain_selfamplify.evaluation.grid import GridConfig
from langchain_selfamplify.evaluation.statistics import PairedComparison
from langchain_selfamplify.pipeline import RunConfig


def test_runnables_reject_unknown_arguments_naming_them(tiny_slm, demo_pool):
    with pytest.raises(TypeError, match=r"SelfAmplifySelector got unknown argument\(s\) 'sed'; "
                                        r"it accepts: .*seed.*strategy"):
        SelfAmplifySelector(backend=tiny_slm, examples=demo_pool, n=2, sed=1)
    with pytest.raises(TypeError, match=r"'rationale_method'.*rationales"):
        SelfAmplifySelector(backend=tiny_slm, examples=demo_pool, n=2, rationale_method="ph_cot")
    with pytest.raises(TypeError, match=r"RationaleGenerator got unknown argument\(s\) 'kk'.*"
                                        r"method_kwargs"):
        RationaleGenerator(backend=tiny_slm, method="deeplift", kk=3)
    with pytest.raises(TypeError, match=r"AmplifiedPrompt got unknown argument\(s\) 'exampels'"):
        AmplifiedPrompt(exampels=[])


@pytest.mark.parametrize("model", [RunConfig, GridConfig])
def test_configs_reject_unknown_settings_listing_the_accepted_ones(model):
    with pytest.raises(ValidationError, match=r"got unknown argument\(s\) 'shotz'; it accepts: "
                                              r".*shots"):
        model(shotz=4)


def test_data_and_result_models_reject_unknown_fields():
    with pytest.raises(ValidationError, match=r"'explanation'"):
        MCQExample(id="q", question="Q?", choices={"A": "a", "B": "b"}, answer="A",
                   explanation="x")
    with pytest.raises(ValidationError, match=r"'verdict'"):
        PairedComparison(n=1, difference=0, ci_low=0, ci_high=0, p_value=1, method_only=0,
                         baseline_only=0, verdict="beats")

"""Judge and paraphrase on the real packaged model (SmolLM2-135M on managed vLLM).

A 135M model's verdicts are weak, so this asserts structure and storage: constrained JSON comes back
as a complete verdict, it is stored with the trial, and whatever is accepted lands as exemplars.
"""

from __future__ import annotations

import pytest

from ste_mcp.memory.exploit import Exploiter
from ste_mcp.memory.hindsight import restate
from ste_mcp.memory.judge import judge
from ste_mcp.memory.paraphrase import paraphrase
from ste_mcp.memory.settings import MemorySettings
from ste_mcp.upstream.client import UpstreamClient
from tests.fixtures.exemplars import (
    record_trial,
    started_upstream,  # noqa: F401 (the upstream fixture)
    stores,
)

pytestmark = [pytest.mark.model, pytest.mark.anyio]


async def test_judge_and_paraphrase_on_real_model(chat_model, data_dir, upstream):
    tools = {t.name: t for t in upstream.tools()}
    trials, exemplars, exploiter = stores(
        data_dir, MemorySettings(description_render="examples", paraphrases_per_exemplar=2, hindsight=True)
    )
    assert isinstance(exploiter, Exploiter)
    async with UpstreamClient() as client:
        trial = await record_trial(
            trials,
            client,
            tools["convert_currency"],
            {"amount": "100", "to": "EUR"},
            "Convert 100 US dollars to euros",
        )

    verdict = await judge(chat_model, trial, tools["convert_currency"].description)
    assert verdict.error is None, verdict  # constrained decoding: every question answered
    for answer in (verdict.informative, verdict.faithful, verdict.appropriate):
        assert isinstance(answer.ok, bool)
    assert verdict.model == chat_model.model

    texts = await paraphrase(chat_model, trial.query, 3)
    assert len(texts) <= 3
    assert all(t.strip() and t.lower() != trial.query.lower() for t in texts)

    restated = await restate(chat_model, trial, tools["convert_currency"].description)
    assert restated is not None and restated.request.strip()  # constrained JSON: a request comes back

    report = await exploiter.process(chat_model, tools)
    assert report.judged == 1 and not report.errors
    stored = trials.get(trial.id).verdict
    assert set(stored) >= {"informative", "faithful", "appropriate", "accepted", "model"}
    assert ("imagined" in stored) != ("hindsight" in stored)  # hindsight ran: restated, or why not
    if stored["accepted"]:
        [original] = exemplars.find("convert_currency", originals_only=True)
        assert original.status == "approved" and original.provenance.trial_ids == [trial.id]
        assert (original.query != trial.query) == ("imagined" in stored)
        assert report.paraphrases == len(exemplars.find("convert_currency")) - 1
    else:
        assert exemplars.find() == []

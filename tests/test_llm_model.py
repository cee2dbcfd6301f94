"""The model side for real: SmolLM2-135M served by the session's managed vLLM on CPU."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import jsonschema
import pytest

from ste_mcp.llm.base import ModelError
from ste_mcp.llm.client import OpenAIChatModel
from ste_mcp.llm.protocols import NativeToolProtocol, ParsedCall, ParseError, ReActProtocol, tool_def

pytestmark = [pytest.mark.model, pytest.mark.anyio]

WEATHER = tool_def(
    "get_weather",
    "Current weather for a city.",
    {
        "type": "object",
        "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["C", "F"]}},
        "required": ["city", "unit"],
        "additionalProperties": False,
    },
)
PERSON = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 0}},
    "required": ["name", "age"],
    "additionalProperties": False,
}


def ask(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


async def test_chat_reply_and_usage(chat_model: OpenAIChatModel) -> None:
    response = await chat_model.chat(
        ask("What is the capital of France? Answer in one sentence."), max_tokens=24
    )
    assert "Paris" in response.text
    assert response.model == chat_model.model and response.choices[0].finish_reason in ("stop", "length")
    assert response.usage.prompt_tokens > 5 and 0 < response.usage.completion_tokens <= 24
    assert chat_model.usage.completion_tokens == response.usage.completion_tokens


async def test_json_schema_reply_validates(chat_model: OpenAIChatModel) -> None:
    response = await chat_model.chat(
        ask("Describe a person as JSON."),
        max_tokens=60,
        response_format={"type": "json_schema", "json_schema": {"name": "person", "schema": PERSON}},
    )
    jsonschema.validate(json.loads(response.text), PERSON)


async def test_choice_constraint(chat_model: OpenAIChatModel) -> None:
    response = await chat_model.chat(
        ask("Is the sky green? Answer yes or no."),
        max_tokens=4,
        temperature=1.0,
        structured={"choice": ["yes", "no"]},
        n=2,
    )
    assert [c.text for c in response.choices] and all(c.text in ("yes", "no") for c in response.choices)


async def test_forced_native_tool_call_with_strict_matches_the_schema(chat_model: OpenAIChatModel) -> None:
    protocol = NativeToolProtocol(
        tool_choice={"type": "function", "function": {"name": "get_weather"}}, strict=True
    )
    response = await chat_model.chat(
        ask("What's the weather in Paris in Celsius?"), max_tokens=160, **protocol.request_kwargs([WEATHER])
    )
    parsed = protocol.parse(response, ["get_weather"])
    assert isinstance(parsed, ParsedCall), parsed
    jsonschema.validate(parsed.arguments, WEATHER["function"]["parameters"])


async def test_react_turn_stops_before_observation(chat_model: OpenAIChatModel) -> None:
    # the constraint makes the model write an Observation line; the stop string must cut it off
    forced = r'Thought: ok\nAction: get_weather\nAction Input: \{"city": "Paris"\}\nObservation: sunny and 20 degrees'
    response = await chat_model.chat(
        ask("Weather in Paris?"), max_tokens=60, stop=["Observation:"], structured={"regex": forced}
    )
    assert response.text.rstrip() == 'Thought: ok\nAction: get_weather\nAction Input: {"city": "Paris"}'
    assert response.choices[0].finish_reason == "stop"


async def test_prefix_is_continued_by_the_real_model(chat_model: OpenAIChatModel) -> None:
    protocol = ReActProtocol(constrained=False)
    kwargs = protocol.request_kwargs([WEATHER])
    assert kwargs["prefix"] == "Thought:" and "structured" not in kwargs
    messages = [
        {"role": "system", "content": protocol.system_prompt([WEATHER])},
        {"role": "user", "content": "What's the weather in Oslo?"},
    ]
    response = await chat_model.chat(messages, max_tokens=40, **kwargs)
    assert response.text.startswith("Thought:") and len(response.text) > len("Thought:")
    assert "Observation:" not in response.text


async def test_constrained_react_turn_always_parses(chat_model: OpenAIChatModel) -> None:
    protocol = ReActProtocol()
    messages = [
        {"role": "system", "content": protocol.system_prompt([WEATHER])},
        {"role": "user", "content": "What's the weather in Oslo?"},
    ]
    response = await chat_model.chat(
        messages, max_tokens=120, temperature=1.0, n=3, **protocol.request_kwargs([WEATHER])
    )
    for choice in response.choices:
        single = response.model_copy(update={"choices": [choice]})
        assert "Observation:" not in choice.text
        if choice.finish_reason == "stop":  # a reply cut by max_tokens may be unfinished
            assert not isinstance(protocol.parse(single, ["get_weather"]), ParseError), choice.text


@pytest.fixture(scope="module")
def random_lora(smollm2_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny PEFT LoRA for SmolLM2 with random (non-zero) weights, saved with save_pretrained."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(smollm2_dir, dtype=torch.bfloat16)
    config = LoraConfig(
        r=8,
        lora_alpha=64,
        target_modules=["q_proj", "v_proj"],
        init_lora_weights=False,
        task_type="CAUSAL_LM",
    )
    out = tmp_path_factory.mktemp("lora") / "random-lora"
    get_peft_model(base, config).save_pretrained(out)
    return out


async def test_lora_adapter_loaded_at_run_time_and_used_by_name(
    chat_model: OpenAIChatModel, random_lora: Path
) -> None:
    prompt = ask("Name three colors.")
    base = await chat_model.chat(prompt, max_tokens=16)
    await chat_model.load_lora("random-lora", str(random_lora))
    try:
        assert "random-lora" in await chat_model.list_models()
        tuned = await chat_model.chat(prompt, model="random-lora", max_tokens=16)
        assert tuned.model == "random-lora"
        assert tuned.text != base.text  # the adapter's (random) weights really take part
    finally:
        await chat_model.unload_lora("random-lora")
    with pytest.raises(ModelError, match="random-lora"):
        await chat_model.chat(prompt, model="random-lora", max_tokens=4)


async def test_killed_server_is_restarted_and_adapters_reloaded(
    vllm_server, chat_model: OpenAIChatModel, random_lora: Path
) -> None:
    """Runs last in this file: it costs one server start."""
    managed = vllm_server.managed
    if managed is None:
        pytest.skip("external server (STE_MCP_TEST_LLM_URL): no managed process to kill")
    await chat_model.load_lora("survivor", str(random_lora))
    generation = managed.generation
    os.kill(managed.pid, signal.SIGKILL)
    response = await chat_model.chat(ask("Say hello."), model="survivor", max_tokens=8)
    assert response.model == "survivor" and response.text
    assert managed.generation == generation + 1 and managed.restarts >= 1
    await chat_model.unload_lora("survivor")

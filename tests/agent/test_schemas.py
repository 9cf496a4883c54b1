"""Tool schemas: OpenAI strict-mode rules, Anthropic input_schema, one source (the pydantic models)."""
from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from sat.agent.schemas import input_schema, strict_schema, tool_definitions
from sat.agent.tools import TOOLS

EXPECTED = {"list_concepts", "resolve_prompt", "segment", "refine", "measure", "compare", "ground_report"}


def _objects(node):
    """Every schema object (a node with properties or type object) inside ``node``."""
    if isinstance(node, dict):
        if node.get("type") == "object" or "properties" in node:
            yield node
        for key, value in node.items():
            if key in ("properties", "$defs"):
                for sub in value.values():
                    yield from _objects(sub)
            else:
                yield from _objects(value)
    elif isinstance(node, list):
        for x in node:
            yield from _objects(x)


def _keys(node):
    if isinstance(node, dict):
        for key, value in node.items():
            if key not in ("properties", "$defs"):
                yield key
            yield from _keys(value if key not in ("properties", "$defs") else list(value.values()))
    elif isinstance(node, list):
        for x in node:
            yield from _keys(x)


def test_openai_definitions_follow_strict_mode():
    defs = tool_definitions("openai")
    assert {d["function"]["name"] for d in defs} == EXPECTED
    for d in defs:
        assert d["type"] == "function" and d["function"]["strict"] is True and d["function"]["description"]
        params = d["function"]["parameters"]
        assert params["type"] == "object"
        objects = list(_objects(params))
        assert objects
        for obj in objects:
            assert obj["additionalProperties"] is False
            assert sorted(obj["required"]) == sorted(obj["properties"])
        assert not {"default", "title", "maxLength", "minLength"} & set(_keys(params))


def test_optional_inputs_are_nullable_in_strict_mode():
    params = {d["function"]["name"]: d["function"]["parameters"] for d in tool_definitions("openai")}
    for tool, prop in (("list_concepts", "query"), ("list_concepts", "region"), ("segment", "modality"),
                       ("measure", "image_path")):
        schema = params[tool]["properties"][prop]
        assert {"type": "null"} in schema["anyOf"], (tool, prop)


def test_strict_schema_handles_nested_objects_and_plain_types():
    raw = {"type": "object", "properties": {"a": {"type": "string", "default": "x"},
                                            "b": {"type": "object", "properties": {"c": {"type": "integer"}}}},
           "required": ["b"]}
    out = strict_schema(raw)
    assert out["required"] == ["a", "b"] and out["properties"]["a"]["type"] == ["string", "null"]
    assert out["properties"]["b"]["additionalProperties"] is False and out["properties"]["b"]["required"] == ["c"]
    assert "default" not in out["properties"]["a"] and raw["properties"]["a"]["default"] == "x"  # input untouched


def test_anthropic_and_mcp_definitions_come_from_the_models():
    anth = {d["name"]: d for d in tool_definitions("anthropic")}
    mcp = {d["name"]: d for d in tool_definitions("mcp")}
    assert set(anth) == set(mcp) == EXPECTED
    for name, spec in TOOLS.items():
        schema = input_schema(spec.input_model)
        assert anth[name]["input_schema"] == schema == mcp[name]["inputSchema"]
        assert schema["type"] == "object" and schema["additionalProperties"] is False
        assert set(schema["properties"]) == set(spec.input_model.model_fields)
    assert anth["segment"]["input_schema"]["required"] == ["image_path", "prompts"]


def test_models_enforce_the_limits_the_openai_schema_drops():
    seg = TOOLS["segment"].input_model
    with pytest.raises(ValidationError):
        seg.model_validate({"image_path": "a.nii.gz", "prompts": ["x" * 513]})
    with pytest.raises(ValidationError):
        seg.model_validate({"image_path": "a.nii.gz", "prompts": ["liver"] * 33})
    with pytest.raises(ValidationError):
        seg.model_validate({"image_path": "a.nii.gz", "prompts": ["liver"], "shell": "rm -rf /"})
    ok = seg.model_validate({"image_path": "a.nii.gz", "prompts": ["liver"], "modality": None})
    assert ok.modality is None


def test_cli_writes_schemas(tmp_path, capsys):
    from sat.cli import main

    out = tmp_path / "tools.json"
    assert main(["agent", "schemas", "--format", "openai", "-o", str(out)]) == 0
    assert json.loads(out.read_text()) == tool_definitions("openai")
    assert main(["agent", "schemas", "--format", "anthropic"]) == 0
    assert json.loads(capsys.readouterr().out) == tool_definitions("anthropic")
    assert main(["agent", "schemas", "--format", "yaml"]) == 2
    with pytest.raises(ValueError, match="yaml"):
        tool_definitions("yaml")

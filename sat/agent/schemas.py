"""Tool definitions for MCP, OpenAI and Anthropic, all generated from the pydantic input models.

* ``mcp``: the cleaned JSON schema the MCP server publishes as ``inputSchema``.
* ``openai``: ``{"type": "function", "function": {..., "strict": true}}``. Strict mode needs every
  property listed in ``required`` (optional inputs are nullable instead), ``additionalProperties:
  false`` on every object, and only the keywords strict mode supports; length limits and defaults
  are dropped from the schema and still enforced by the server.
* ``anthropic``: ``{"name", "description", "input_schema"}``.
"""
from __future__ import annotations

import copy
from typing import Any

from pydantic import BaseModel

FORMATS = ("openai", "anthropic", "mcp")
# Keywords OpenAI's strict mode accepts; anything else is dropped from the OpenAI variant.
_STRICT_KEYS = frozenset({"type", "properties", "required", "additionalProperties", "enum", "const", "anyOf",
                          "items", "description", "$defs", "$ref", "pattern", "format", "minimum", "maximum",
                          "exclusiveMinimum", "exclusiveMaximum", "multipleOf", "minItems", "maxItems"})


def _walk(node: Any, fn) -> Any:
    """Apply ``fn`` to every schema object (never to the name->schema maps that hold them)."""
    if isinstance(node, list):
        return [_walk(x, fn) for x in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        if key in ("properties", "$defs") and isinstance(value, dict):
            out[key] = {name: _walk(sub, fn) for name, sub in value.items()}
        else:
            out[key] = _walk(value, fn)
    return fn(out)


def input_schema(model: type[BaseModel]) -> dict:
    """The model's JSON schema without pydantic's ``title`` keys."""
    def drop_title(node: dict) -> dict:
        node.pop("title", None)
        return node
    return _walk(model.model_json_schema(), drop_title)


def _nullable(schema: dict) -> dict:
    if "anyOf" in schema:
        if not any(s.get("type") == "null" for s in schema["anyOf"]):
            schema["anyOf"].append({"type": "null"})
        return schema
    t = schema.get("type")
    if isinstance(t, str) and t != "null":
        schema["type"] = [t, "null"]
    elif isinstance(t, list) and "null" not in t:
        schema["type"] = [*t, "null"]
    return schema


def strict_schema(schema: dict) -> dict:
    """Convert a JSON schema to OpenAI strict mode (see the module docstring)."""
    def strict(node: dict) -> dict:
        node = {k: v for k, v in node.items() if k in _STRICT_KEYS}
        if node.get("type") == "object" or "properties" in node:
            props = node.setdefault("properties", {})
            required = set(node.get("required", []))
            for name in props:
                if name not in required:
                    props[name] = _nullable(props[name])
            node["required"] = list(props)
            node["additionalProperties"] = False
        return node
    return _walk(copy.deepcopy(schema), strict)


def tool_definitions(fmt: str) -> list[dict]:
    """Every tool's definition in ``fmt`` (``openai``, ``anthropic`` or ``mcp``).

    Raises:
        ValueError: unknown format.
    """
    from sat.agent.tools import TOOLS

    if fmt not in FORMATS:
        raise ValueError(f"unknown schema format {fmt!r}; choose from {FORMATS}")
    out = []
    for spec in TOOLS.values():
        schema = input_schema(spec.input_model)
        if fmt == "openai":
            out.append({"type": "function", "function": {"name": spec.name, "description": spec.description,
                                                         "parameters": strict_schema(schema), "strict": True}})
        elif fmt == "anthropic":
            out.append({"name": spec.name, "description": spec.description, "input_schema": schema})
        else:
            out.append({"name": spec.name, "description": spec.description, "inputSchema": schema})
    return out

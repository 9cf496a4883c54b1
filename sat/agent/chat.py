"""A reference agent loop for any OpenAI-compatible ``/v1/chat/completions`` endpoint.

The loop sends the conversation with the tool definitions (OpenAI strict schemas), executes every
``tool_calls`` entry through the :class:`~sat.agent.tools.Dispatcher` (so the same validation and
safety checks apply as over MCP), appends the results as ``tool`` messages and asks again, until
the model answers without tool calls or ``max_turns`` is reached. It uses only ``urllib``.
"""
from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Any, Callable

from sat.errors import InputError

SYSTEM_PROMPT = ("You help researchers analyse 3D medical images with segmentation tools. Call tools to "
                 "segment, measure and ground structures; quote the numbers they return; say when a tool "
                 "refuses. Results are for research, not diagnosis.")
_LOOPBACK = ("127.0.0.1", "localhost", "::1")


@dataclass
class ChatConfig:
    """Where and how to chat.

    Attributes:
        endpoint: server base URL (``http://host:port`` or ``.../v1``) or the full completions URL.
        model: model name sent with each request.
        api_key_env: name of an environment variable holding a bearer token, if the server wants one.
        max_turns: most model calls per user message.
        timeout_s: HTTP timeout per model call.
        temperature: sampling temperature (``None``: the server's default).
        system: system prompt.
    """

    endpoint: str
    model: str
    api_key_env: str | None = None
    max_turns: int = 8
    timeout_s: float = 300.0
    temperature: float | None = 0.0
    system: str = SYSTEM_PROMPT


def completions_url(endpoint: str) -> str:
    """``.../v1/chat/completions`` for a base URL, ``/v1`` URL or full URL.

    Raises:
        InputError: not an http(s) URL.
    """
    parsed = urllib.parse.urlparse(endpoint)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise InputError(f"endpoint {endpoint!r}: expected an http:// or https:// URL")
    path = parsed.path.rstrip("/")
    if not path.endswith("/chat/completions"):
        path += "/chat/completions" if path.endswith("/v1") else "/v1/chat/completions"
    return urllib.parse.urlunparse(parsed._replace(path=path))


def post_json(url: str, payload: dict, headers: dict[str, str], timeout_s: float) -> dict:
    """POST JSON and return the decoded JSON answer (loopback URLs bypass any proxy)."""
    handlers = [urllib.request.ProxyHandler({})] if urllib.parse.urlparse(url).hostname in _LOOPBACK else []
    opener = urllib.request.build_opener(*handlers)
    req = urllib.request.Request(url, data=json.dumps(payload).encode("utf-8"), method="POST",
                                 headers={"Content-Type": "application/json", **headers})
    try:
        with opener.open(req, timeout=timeout_s) as resp:
            return json.loads(resp.read().decode("utf-8"))
    except urllib.error.HTTPError as exc:
        body = exc.read().decode("utf-8", "replace")[:300]
        raise InputError(f"{url}: HTTP {exc.code} {exc.reason}: {body}") from None
    except (urllib.error.URLError, TimeoutError, json.JSONDecodeError) as exc:
        raise InputError(f"{url}: no usable answer ({type(exc).__name__}: {exc})") from None


@dataclass
class ToolCallRecord:
    """One executed tool call, kept for inspection."""

    name: str
    arguments: str
    is_error: bool
    result: str


@dataclass
class ChatSession:
    """A conversation whose tool calls run through ``dispatcher``.

    Args:
        dispatcher: a :class:`~sat.agent.tools.Dispatcher` (or anything with ``call_json``).
        config: endpoint, model and limits.
        post: the HTTP function (replaceable in tests).
    """

    dispatcher: Any
    config: ChatConfig
    post: Callable[[str, dict, dict, float], dict] = post_json
    messages: list[dict] = field(default_factory=list)
    calls: list[ToolCallRecord] = field(default_factory=list)

    def __post_init__(self) -> None:
        from sat.agent.schemas import tool_definitions

        self.url = completions_url(self.config.endpoint)
        self.tools = tool_definitions("openai")
        if not self.messages:
            self.messages.append({"role": "system", "content": self.config.system})

    def _headers(self) -> dict[str, str]:
        name = self.config.api_key_env
        if not name:
            return {}
        key = os.environ.get(name)
        if not key:
            raise InputError(f"environment variable {name} (from --api-key-env) is not set")
        return {"Authorization": f"Bearer {key}"}

    def ask(self, text: str) -> str:
        """Send one user message; run tool calls until the model answers. Returns the answer text."""
        self.messages.append({"role": "user", "content": text})
        for _ in range(self.config.max_turns):
            payload = {"model": self.config.model, "messages": self.messages, "tools": self.tools,
                       "tool_choice": "auto"}
            if self.config.temperature is not None:
                payload["temperature"] = self.config.temperature
            answer = self.post(self.url, payload, self._headers(), self.config.timeout_s)
            try:
                message = answer["choices"][0]["message"]
            except (KeyError, IndexError, TypeError):
                raise InputError(f"{self.url}: answer has no choices[0].message: {str(answer)[:200]}") from None
            calls = message.get("tool_calls") or []
            self.messages.append({"role": "assistant", "content": message.get("content"),
                                  **({"tool_calls": calls} if calls else {})})
            if not calls:
                return message.get("content") or ""
            for call in calls:
                fn = call.get("function", {})
                name, args = fn.get("name", ""), fn.get("arguments") or "{}"
                is_error, result = self.dispatcher.call_json(name, args)
                self.calls.append(ToolCallRecord(name, args, is_error, result))
                self.messages.append({"role": "tool", "tool_call_id": call.get("id", ""), "content": result})
        return f"(stopped after {self.config.max_turns} model calls without a final answer)"

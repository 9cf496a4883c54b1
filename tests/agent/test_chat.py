"""The reference chat loop against a scripted OpenAI-compatible endpoint on loopback.

The fake endpoint is not a model: it replays a fixed script (tool calls, then a final answer) and
records every request, so the test checks the protocol path end to end over real HTTP.
"""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from sat.agent.chat import ChatConfig, ChatSession, completions_url
from sat.agent.safety import SafetyPolicy
from sat.agent.tools import Dispatcher
from sat.errors import InputError


def _tool_call(call_id, name, args):
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": json.dumps(args)}}


SCRIPT = [
    {"choices": [{"message": {"role": "assistant", "content": None, "tool_calls": [
        _tool_call("call_1", "list_concepts", {"query": "kidney", "region": None}),
        _tool_call("call_2", "segment", {"image_path": "/etc/passwd", "prompts": ["liver"], "modality": None}),
    ]}, "finish_reason": "tool_calls"}]},
    {"choices": [{"message": {"role": "assistant", "content": "The model can segment both kidneys."},
                  "finish_reason": "stop"}]},
]


@pytest.fixture()
def fake_endpoint():
    """A loopback HTTP server replaying SCRIPT; yields (base URL, list of received JSON bodies)."""
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server API)
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            received.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
            answer = SCRIPT[min(len(received), len(SCRIPT)) - 1]
            data = json.dumps(answer).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", received
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def dispatcher(segmenter, tmp_path_factory):
    d = Dispatcher(segmenter, SafetyPolicy(allowed_roots=[tmp_path_factory.mktemp("chat_root")], timeout_s=120))
    yield d
    d.close()


def test_completions_url_forms():
    assert completions_url("http://h:1") == "http://h:1/v1/chat/completions"
    assert completions_url("http://h:1/v1/") == "http://h:1/v1/chat/completions"
    assert completions_url("https://h/x/v1/chat/completions") == "https://h/x/v1/chat/completions"
    with pytest.raises(InputError):
        completions_url("file:///etc/passwd")


def test_loop_executes_tool_calls_and_returns_the_final_answer(fake_endpoint, dispatcher, monkeypatch):
    url, received = fake_endpoint
    monkeypatch.setenv("FAKE_KEY", "sk-test")
    session = ChatSession(dispatcher, ChatConfig(endpoint=url, model="fake-model", api_key_env="FAKE_KEY"))
    answer = session.ask("Which kidney structures can you segment?")
    assert answer == "The model can segment both kidneys."
    assert len(received) == 2 and all(r["path"] == "/v1/chat/completions" for r in received)
    first = received[0]["body"]
    assert first["model"] == "fake-model" and received[0]["auth"] == "Bearer sk-test"
    assert {t["function"]["name"] for t in first["tools"]} >= {"segment", "ground_report"}
    assert all(t["function"]["strict"] for t in first["tools"])
    # the second request carries the assistant's tool calls and one tool message per call, in order
    msgs = received[1]["body"]["messages"]
    assert [m["role"] for m in msgs] == ["system", "user", "assistant", "tool", "tool"]
    assert [m["tool_call_id"] for m in msgs[3:]] == ["call_1", "call_2"]
    listed = json.loads(msgs[3]["content"])
    ids = {c["id"] for c in listed["concepts"]}
    assert {"kidney_left", "kidney_right", "kidneys"} <= ids and all(c["via"] for c in listed["concepts"])
    refused = json.loads(msgs[4]["content"])
    assert "outside the allowed roots" in refused["error"]
    assert [(c.name, c.is_error) for c in session.calls] == [("list_concepts", False), ("segment", True)]


def test_unknown_tool_and_bad_json_arguments_become_tool_errors(dispatcher):
    err, text = dispatcher.call_json("rm_rf", {})
    assert err and "unknown tool" in json.loads(text)["error"]
    err, text = dispatcher.call_json("list_concepts", "{not json")
    assert err and "not valid JSON" in json.loads(text)["error"]
    err, text = dispatcher.call_json("resolve_prompt", {"text": "left kidney"})
    assert not err and json.loads(text)["concept"] == "kidney_left" and json.loads(text)["answerable"]


def test_cli_chat_runs_one_message(fake_endpoint, tiny_checkpoint, tmp_path, capsys):
    from sat.cli import main

    url, received = fake_endpoint
    rc = main(["agent", "chat", "--endpoint", url, "--model", "fake-model", "--checkpoint", str(tiny_checkpoint),
               "--allow-root", str(tmp_path), "--device", "cpu", "-m", "What can you segment?"])
    captured = capsys.readouterr()
    assert rc == 0 and captured.out.strip() == "The model can segment both kidneys."
    assert "[tool] list_concepts" in captured.err and "-> error" in captured.err
    assert len(received) == 2

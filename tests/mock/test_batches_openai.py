"""The mock's OpenAI Files and Batches APIs: the lifecycle on a clock the test moves,
answers equal to the online mock's, validation, limits, expiry, cancellation, faults, list
pagination, and the same routes over the loopback server and the in-process transport."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from lm_deluge_cli.errors import ConfigError
from lm_deluge_cli.mock.batches import BatchFaults, BatchSettings, MockBatches
from lm_deluge_cli.mock.formats import match_route
from lm_deluge_cli.mock.server import serve
from lm_deluge_cli.mock.simulator import MockSettings, Simulator
from lm_deluge_cli.mock.transport import InProcessTransport, mock_transport
from lm_deluge_cli.types import HttpRequest
from tests.mock.batch_client import MODEL, Direct, chat_line, jsonl, multipart, stable

# The documented payloads (see tests/providers/batch_payloads/README.md).
DOCUMENTED = Path(__file__).parents[1] / "providers" / "batch_payloads" / "openai"


def documented(name: str) -> Any:
    text = (DOCUMENTED / name).read_bytes()
    return orjson.loads(text) if name.endswith(".json") else orjson.loads(text.splitlines()[0])


BATCH_FIELDS = set(documented("batch_object_completed.json"))


def lines_of(n: int) -> list[dict[str, Any]]:
    return [chat_line(f"req-{i}", f"question {i}") for i in range(n)]


def online(path: str, body: dict[str, Any]) -> Any:
    """What the online mock answers `body` on `path`."""
    route = match_route(path)
    assert route is not None
    return orjson.loads(Simulator(MockSettings()).handle(route, {}, orjson.dumps(body)).body)


def test_the_objects_have_the_documented_fields() -> None:
    client = Direct(BatchSettings(processing_s=0, expire_fraction=0.5))
    _, uploaded = client.upload(jsonl(lines_of(1)))
    assert set(documented("file_upload_response.json")) <= set(uploaded)
    line = documented("input_line.jsonl")
    done = client.get(client.create([line, chat_line("late")])["id"])
    assert set(done) == BATCH_FIELDS and done["status"] == "expired"
    [answered] = client.lines(done["output_file_id"])
    ok = documented("output_line_ok.jsonl")
    assert set(answered) == set(ok) and set(answered["response"]) == set(ok["response"])
    assert answered["custom_id"] == line["custom_id"]
    [expired] = client.lines(done["error_file_id"])
    assert {**expired, "id": None, "custom_id": None} == {
        **documented("error_line_expired.jsonl"),
        "id": None,
        "custom_id": None,
    }
    page = client.json("GET", "/v1/batches")[1]
    assert set(page) == set(documented("batch_list.json"))
    usage = answered["response"]["body"]["usage"]
    assert done["usage"]["input_tokens"] == usage["prompt_tokens"] > 0
    assert done["usage"]["output_tokens"] == usage["completion_tokens"] > 0
    assert set(done["usage"]) == set(documented("batch_object_completed.json")["usage"])


def test_a_file_is_uploaded_read_and_deleted() -> None:
    client = Direct()
    content = jsonl(lines_of(2))
    status, uploaded = client.upload(content, name="prompts.jsonl")
    assert status == 200
    assert uploaded["id"].startswith("file-") and uploaded["object"] == "file"
    assert uploaded["bytes"] == len(content) and uploaded["filename"] == "prompts.jsonl"
    assert uploaded["purpose"] == "batch" and uploaded["status"] == "processed"
    assert uploaded["created_at"] == int(client.now)
    assert client.json("GET", f"/v1/files/{uploaded['id']}") == (200, uploaded)
    assert client.call("GET", f"/v1/files/{uploaded['id']}/content").body == content
    deleted = {"id": uploaded["id"], "object": "file", "deleted": True}
    assert client.json("DELETE", f"/v1/files/{uploaded['id']}") == (200, deleted)
    status, error = client.json("GET", f"/v1/files/{uploaded['id']}")
    assert status == 404 and error["error"]["type"] == "invalid_request_error"


def test_an_upload_without_a_file_or_a_purpose_is_refused() -> None:
    client = Direct()
    content_type, body = multipart(b"{}\n")
    without_purpose = body.replace(b'name="purpose"', b'name="other"')
    answer = client.call("POST", "/v1/files", without_purpose, {"content-type": content_type})
    assert answer.status == 400 and orjson.loads(answer.body)["error"]["param"] == "purpose"
    answer = client.call("POST", "/v1/files", b"{}", {"content-type": "application/json"})
    assert answer.status == 400


def test_a_batch_moves_through_its_states_on_the_clock() -> None:
    client = Direct(BatchSettings(processing_s=100))
    batch = client.create(lines_of(10), metadata={"run": "r1"})
    assert set(batch) == BATCH_FIELDS
    assert batch["id"].startswith("batch_") and batch["status"] == "validating"
    assert batch["expires_at"] == batch["created_at"] + 24 * 3600
    assert batch["metadata"] == {"run": "r1"} and batch["model"] == MODEL
    client.now += 10
    assert client.get(batch["id"])["status"] == "in_progress"
    client.now += 35  # halfway through in_progress
    halfway = client.get(batch["id"])
    assert halfway["request_counts"] == {"total": 10, "completed": 5, "failed": 0}
    assert halfway["output_file_id"] is None
    client.now += 35
    assert client.get(batch["id"])["status"] == "finalizing"
    client.now += 20
    done = client.get(batch["id"])
    assert done["status"] == "completed" and done["error_file_id"] is None
    assert done["request_counts"] == {"total": 10, "completed": 10, "failed": 0}
    start = batch["created_at"]
    assert (done["in_progress_at"], done["finalizing_at"]) == (start + 10, start + 80)
    assert done["completed_at"] == start + 100
    output = client.lines(done["output_file_id"])
    assert [line["custom_id"] for line in output] == [f"req-{i}" for i in range(10)]
    assert client.json("GET", f"/v1/files/{done['output_file_id']}")[1]["purpose"] == (
        "batch_output"
    )


@pytest.mark.parametrize(
    ("endpoint", "body"),
    [
        ("/v1/chat/completions", {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}),
        ("/v1/responses", {"model": MODEL, "input": "Name a colour."}),
        ("/v1/embeddings", {"model": "text-embedding-3-small", "input": ["a", "b c"]}),
    ],
)
def test_each_line_is_answered_as_the_online_mock_answers_it(
    endpoint: str, body: dict[str, Any]
) -> None:
    client = Direct(BatchSettings(processing_s=0))
    lines = [{"custom_id": "only", "method": "POST", "url": endpoint, "body": body}]
    batch = client.create(lines, endpoint=endpoint)
    done = client.get(batch["id"])
    assert done["status"] == "completed"
    [line] = client.lines(done["output_file_id"])
    assert line["id"].startswith("batch_req_") and line["error"] is None
    response = line["response"]
    assert response["status_code"] == 200 and response["request_id"].startswith("req_")
    assert stable(response["body"]) == stable(online(endpoint, body))


def failed_batch(lines: bytes, endpoint: str = "/v1/chat/completions", **settings: Any) -> Any:
    client = Direct(BatchSettings(processing_s=0, **settings))
    _, uploaded = client.upload(lines)
    params = {"input_file_id": uploaded["id"], "endpoint": endpoint, "completion_window": "24h"}
    batch = client.json("POST", "/v1/batches", params)[1]
    done = client.get(batch["id"])
    assert done["status"] == "failed" and done["failed_at"] is not None
    assert done["request_counts"] == {"total": 0, "completed": 0, "failed": 0}
    assert done["output_file_id"] is None and done["errors"]["object"] == "list"
    assert client.batches.statistics().batch_lines_submitted == 0
    return [(e["code"], e["line"], e["param"]) for e in done["errors"]["data"]]


def test_validation_fails_a_batch_with_each_bad_line_named() -> None:
    other_url = {**chat_line("c"), "url": "/v1/embeddings"}
    no_body = {k: v for k, v in chat_line("d").items() if k != "body"}
    content = jsonl([chat_line("a"), chat_line("a"), other_url, no_body]) + b"not json\n"
    content += jsonl([{**chat_line("e"), "method": "GET"}, chat_line("f", model="gpt-4o")])
    assert failed_batch(content) == [
        ("duplicate_custom_id", 2, "custom_id"),
        ("invalid_url", 3, "url"),
        ("missing_required_parameter", 4, "body"),
        ("invalid_json_line", 5, None),
        ("invalid_value", 6, "method"),
        ("mismatched_model", 7, "body.model"),
    ]


def test_the_request_limit_fails_a_batch_and_the_size_limit_refuses_the_upload() -> None:
    assert failed_batch(jsonl(lines_of(4)), max_requests=3) == [("too_many_requests", None, None)]
    client = Direct(BatchSettings(max_file_bytes=100))
    status, error = client.upload(jsonl(lines_of(4)))
    assert status == 400 and error["error"]["param"] == "file"
    assert client.batches.statistics().files_uploaded == 0


def test_an_embeddings_batch_holds_at_most_its_limit_of_inputs() -> None:
    def embed(custom_id: str, texts: Any) -> dict[str, Any]:
        body = {"model": "text-embedding-3-small", "input": texts}
        return {"custom_id": custom_id, "method": "POST", "url": "/v1/embeddings", "body": body}

    over = jsonl([embed("a", ["x", "y", "z"]), embed("b", "w")])
    expected = [("too_many_inputs", None, None)]
    assert failed_batch(over, "/v1/embeddings", max_embedding_inputs=3) == expected
    client = Direct(BatchSettings(processing_s=0, max_embedding_inputs=4))
    lines = [embed("a", ["x", "y", "z"]), embed("b", [1, 2, 3])]
    done = client.get(client.create(lines, endpoint="/v1/embeddings")["id"])
    assert done["status"] == "completed"


@pytest.mark.parametrize(
    ("change", "status", "param"),
    [
        ({"endpoint": "/v1/completions"}, 400, "endpoint"),
        ({"completion_window": "48h"}, 400, "completion_window"),
        ({"input_file_id": "file-missing"}, 404, "input_file_id"),
        ({"metadata": {f"k{i}": "v" for i in range(17)}}, 400, "metadata"),
        ({"metadata": {"k": "v" * 513}}, 400, "metadata"),
    ],
)
def test_a_batch_with_bad_parameters_is_refused(
    change: dict[str, Any], status: int, param: str
) -> None:
    client = Direct()
    _, uploaded = client.upload(jsonl(lines_of(1)))
    params = {"input_file_id": uploaded["id"], "endpoint": "/v1/chat/completions"}
    params["completion_window"] = "24h"
    got, error = client.json("POST", "/v1/batches", {**params, **change})
    assert (got, error["error"]["param"]) == (status, param)
    assert client.batches.statistics().batches_created == 0


def test_an_input_file_must_have_the_batch_purpose() -> None:
    client = Direct()
    _, uploaded = client.upload(jsonl(lines_of(1)), purpose="user_data")
    params = {"input_file_id": uploaded["id"], "endpoint": "/v1/chat/completions"}
    status, _ = client.json("POST", "/v1/batches", {**params, "completion_window": "24h"})
    assert status == 400


def test_failed_lines_go_to_the_error_file_with_their_error_response() -> None:
    client = Direct(BatchSettings(processing_s=0, line_error_rate=0.5, seed=3))
    done = client.get(client.create(lines_of(40))["id"])
    counts = done["request_counts"]
    assert done["status"] == "completed" and 0 < counts["failed"] < 40
    output, errors = client.lines(done["output_file_id"]), client.lines(done["error_file_id"])
    assert (len(output), len(errors)) == (counts["completed"], counts["failed"])
    ids = sorted(line["custom_id"] for line in output + errors)
    assert ids == sorted(f"req-{i}" for i in range(40))
    for line in errors:
        assert line["error"] is None and line["response"]["status_code"] == 500
        assert line["response"]["body"]["error"]["type"] == "server_error"


def test_lines_left_at_expiry_are_in_the_error_file_as_batch_expired() -> None:
    client = Direct(BatchSettings(processing_s=0, expire_fraction=0.25))
    done = client.get(client.create(lines_of(8))["id"])
    assert done["status"] == "expired" and done["expired_at"] is not None
    assert done["request_counts"] == {"total": 8, "completed": 6, "failed": 2}
    assert [line["custom_id"] for line in client.lines(done["output_file_id"])] == [
        f"req-{i}" for i in range(6)
    ]
    errors = client.lines(done["error_file_id"])
    assert [line["custom_id"] for line in errors] == ["req-6", "req-7"]
    for line in errors:
        assert line["response"] is None and line["error"]["code"] == "batch_expired"


def test_a_cancelled_batch_keeps_the_lines_done_so_far() -> None:
    client = Direct(BatchSettings(processing_s=100))
    batch = client.create(lines_of(10))
    client.now += 10 + 14  # a fifth of the way through in_progress
    status, cancelling = client.json("POST", f"/v1/batches/{batch['id']}/cancel")
    assert status == 200 and cancelling["status"] == "cancelling"
    assert cancelling["cancelling_at"] == int(client.now)
    assert client.json("POST", f"/v1/batches/{batch['id']}/cancel")[0] == 409
    client.now += 20
    done = client.get(batch["id"])
    assert done["status"] == "cancelled" and done["cancelled_at"] == int(client.now)
    assert done["request_counts"] == {"total": 10, "completed": 2, "failed": 8}
    assert len(client.lines(done["output_file_id"])) == 2
    errors = client.lines(done["error_file_id"])
    cancelled = documented("error_line_cancelled.jsonl")
    assert {(line["response"], str(line["error"])) for line in errors} == {
        (None, str(cancelled["error"]))
    }
    assert client.json("POST", f"/v1/batches/{batch['id']}/cancel")[0] == 409


@pytest.mark.parametrize("status", [503, 400])
def test_a_refused_upload_is_refused_the_first_n_times(status: int) -> None:
    client = Direct(BatchSettings(faults=BatchFaults(refuse_uploads=1, upload_status=status)))
    refused, error = client.upload(jsonl(lines_of(1)))
    assert refused == status and "error" in error
    assert client.upload(jsonl(lines_of(1)))[0] == 200
    assert client.batches.statistics().files_uploaded == 1


def test_polling_fails_the_first_n_times() -> None:
    client = Direct(BatchSettings(processing_s=0, faults=BatchFaults(poll_errors=2)))
    batch = client.create(lines_of(1))
    for _ in range(2):
        status, error = client.json("GET", f"/v1/batches/{batch['id']}")
        assert status == 500 and error["error"]["type"] == "server_error"
    assert client.get(batch["id"])["status"] == "completed"


def test_a_results_download_is_cut_mid_line_the_first_n_times() -> None:
    client = Direct(BatchSettings(processing_s=0, faults=BatchFaults(cut_downloads=1)))
    done = client.get(client.create(lines_of(5))["id"])
    path = f"/v1/files/{done['output_file_id']}/content"
    cut = client.call("GET", path).body
    assert not cut.endswith(b"\n")
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(cut.splitlines()[-1])
    whole = client.call("GET", path).body
    assert whole.startswith(cut) and len(whole.splitlines()) == 5


def test_batches_are_listed_newest_first_a_page_at_a_time() -> None:
    client = Direct()
    made = []
    for i in range(5):
        made.append(client.create(lines_of(1), metadata={"n": str(i)})["id"])
        client.now += 1
    newest = made[::-1]
    status, page = client.json("GET", "/v1/batches", limit="2")
    assert status == 200 and page["object"] == "list"
    assert [b["id"] for b in page["data"]] == newest[:2] and page["has_more"] is True
    assert (page["first_id"], page["last_id"]) == (newest[0], newest[1])
    _, page = client.json("GET", "/v1/batches", limit="2", after=page["last_id"])
    assert [b["id"] for b in page["data"]] == newest[2:4] and page["has_more"] is True
    _, page = client.json("GET", "/v1/batches", limit="2", after=page["last_id"])
    assert [b["metadata"] for b in page["data"]] == [{"n": "0"}] and page["has_more"] is False
    assert len(client.json("GET", "/v1/batches")[1]["data"]) == 5
    assert client.json("GET", "/v1/batches", limit="101")[0] == 400


def test_the_counts_say_what_was_uploaded_and_submitted() -> None:
    client = Direct()
    client.create(lines_of(3))
    client.create(lines_of(4))
    client.upload(jsonl(lines_of(2)))
    stats = client.batches.statistics()
    assert (stats.files_uploaded, stats.batches_created, stats.batch_lines_submitted) == (3, 2, 7)


def test_a_wrong_key_is_refused_when_the_mock_expects_one() -> None:
    client = Direct(api_key="sk-right")
    assert client.json("GET", "/v1/batches")[0] == 401
    answer = client.call("GET", "/v1/batches", headers={"authorization": "Bearer sk-right"})
    assert answer.status == 200


@pytest.mark.anyio
async def test_a_batch_runs_end_to_end_over_the_loopback_server() -> None:
    settings = BatchSettings(processing_s=0)
    async with (
        await serve(MockSettings(), batch=settings) as server,
        httpx.AsyncClient(base_url=server.url) as http,
    ):
        lines = lines_of(3)
        files = {"file": ("in.jsonl", jsonl(lines))}
        uploaded = (await http.post("/files", data={"purpose": "batch"}, files=files)).json()
        params = {"input_file_id": uploaded["id"], "endpoint": "/v1/chat/completions"}
        created = await http.post("/batches", json={**params, "completion_window": "24h"})
        done = (await http.get(f"/batches/{created.json()['id']}")).json()
        assert done["status"] == "completed"
        content = (await http.get(f"/files/{done['output_file_id']}/content")).content
        for line, sent in zip(content.splitlines(), lines, strict=True):
            body = orjson.loads(line)["response"]["body"]
            assert stable(body) == stable(online("/v1/chat/completions", sent["body"]))
        listed = (await http.get("/batches", params={"limit": 1})).json()
        assert listed["data"][0]["id"] == done["id"]
        stats = (await http.get(server.root_url + "/stats")).json()
        reset = (await http.post(server.root_url + "/stats/reset")).json()
    assert stats["files_uploaded"] == 1 and stats["batches_created"] == 1
    assert stats["batch_lines_submitted"] == 3
    assert (reset["files_uploaded"], reset["batch_lines_submitted"]) == (0, 0)


def test_a_mock_model_takes_its_batch_settings_from_its_mock_table() -> None:
    table = {"batch": {"processing_s": 0, "faults": {"poll_errors": 2}}, "latency_s": 0}
    transport = mock_transport(table, "fast")
    assert transport.batches.settings == BatchSettings(
        processing_s=0, faults=BatchFaults(poll_errors=2)
    )
    assert transport.simulator.settings == MockSettings()
    assert mock_transport({}, "fast").batches.settings == BatchSettings()
    with pytest.raises(ConfigError, match="procesing_s"):
        mock_transport({"batch": {"procesing_s": 0}}, "fast")
    with pytest.raises(ConfigError, match=r"mock\.batch\.faults\.poll_errors"):
        mock_transport({"batch": {"faults": {"poll_errors": "2"}}}, "fast")


@pytest.mark.anyio
async def test_a_batch_runs_end_to_end_in_process() -> None:
    simulator = Simulator(MockSettings())
    transport = InProcessTransport(simulator, MockBatches(simulator, BatchSettings(processing_s=0)))
    content_type, body = multipart(jsonl(lines_of(2)))
    root = "mock://in-process/v1"
    upload = HttpRequest("POST", f"{root}/files", {"Content-Type": content_type}, body)
    uploaded = orjson.loads((await transport.send(upload)).body)
    params = {"input_file_id": uploaded["id"], "endpoint": "/v1/chat/completions"}
    payload = orjson.dumps({**params, "completion_window": "24h"})
    created = await transport.send(HttpRequest("POST", f"{root}/batches", {}, payload))
    batch_id = orjson.loads(created.body)["id"]
    got = await transport.send(HttpRequest("GET", f"{root}/batches/{batch_id}", {}, b""))
    done = orjson.loads(got.body)
    assert done["status"] == "completed"
    assert done["request_counts"] == {"total": 2, "completed": 2, "failed": 0}
    assert transport.batches.statistics().batch_lines_submitted == 2

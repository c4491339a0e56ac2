"""Every kind of bad input gets its exact JSON error and a 4xx, never a 5xx."""

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

JSON = {"content-type": "application/json"}

CASES = [
    # (id, method, path, body bytes or None, headers, status, error_type, error)
    (
        "empty text",
        "POST",
        "/predict",
        b'{"text": ""}',
        JSON,
        422,
        "empty_text",
        "text must not be empty or whitespace only",
    ),
    (
        "whitespace text",
        "POST",
        "/predict",
        b'{"text": " \\n\\t "}',
        JSON,
        422,
        "empty_text",
        "text must not be empty or whitespace only",
    ),
    (
        "missing field",
        "POST",
        "/predict",
        b'{"txt": "hi"}',
        JSON,
        422,
        "missing_field",
        "text: Field required",
    ),
    (
        "null text",
        "POST",
        "/predict",
        b'{"text": null}',
        JSON,
        422,
        "invalid_type",
        "text: Input should be a valid string",
    ),
    (
        "number text",
        "POST",
        "/predict",
        b'{"text": 42}',
        JSON,
        422,
        "invalid_type",
        "text: Input should be a valid string",
    ),
    (
        "object text",
        "POST",
        "/predict",
        b'{"text": {"a": 1}}',
        JSON,
        422,
        "invalid_type",
        "text: Input should be a valid string",
    ),
    (
        "top-level list",
        "POST",
        "/predict",
        b'["hi"]',
        JSON,
        422,
        "invalid_type",
        "Request body must be a JSON object, got an array",
    ),
    (
        "top-level string",
        "POST",
        "/predict",
        b'"hi"',
        JSON,
        422,
        "invalid_type",
        "Request body must be a JSON object, got a string",
    ),
    (
        "top-level number",
        "POST",
        "/predict/batch",
        b"12",
        JSON,
        422,
        "invalid_type",
        "Request body must be a JSON object, got a number",
    ),
    (
        "top-level null",
        "POST",
        "/predict",
        b"null",
        JSON,
        422,
        "invalid_type",
        "Request body must be a JSON object, got null",
    ),
    (
        "empty body",
        "POST",
        "/predict",
        b"",
        JSON,
        422,
        "missing_field",
        "Request body is empty; send a JSON object",
    ),
    (
        "text over the limit",
        "POST",
        "/predict",
        b'{"text": "' + b"a" * 281 + b'"}',
        JSON,
        422,
        "text_too_long",
        "text has 281 characters; the limit is 280",
    ),
    (
        "unpaired surrogate",
        "POST",
        "/predict",
        b'{"text": "hi \\ud800"}',
        JSON,
        422,
        "invalid_input",
        "text contains an unpaired surrogate (\\ud800-\\udfff) and is not valid Unicode",
    ),
    (
        "invalid JSON",
        "POST",
        "/predict",
        b'{"text": "hi"',
        JSON,
        400,
        "invalid_json",
        "Request body is not valid JSON: Expecting ',' delimiter at position 13",
    ),
    (
        "invalid UTF-8",
        "POST",
        "/predict",
        b'{"text": "caf\xe9"}',
        JSON,
        400,
        "invalid_body",
        "Request body is not valid UTF-8",
    ),
    (
        "deeply nested JSON",
        "POST",
        "/predict",
        b"[" * 1500 + b"]" * 1500,
        JSON,
        400,
        "invalid_body",
        "Request body JSON is nested too deeply",
    ),
    (
        "huge body",
        "POST",
        "/predict",
        b'{"text": "' + b"a" * 5000 + b'"}',
        JSON,
        413,
        "body_too_large",
        "Request body is larger than the limit of 4096 bytes",
    ),
    (
        "text/plain",
        "POST",
        "/predict",
        b'{"text": "hi"}',
        {"content-type": "text/plain"},
        415,
        "unsupported_media_type",
        "Content-Type must be application/json, got 'text/plain'",
    ),
    (
        "form encoded",
        "POST",
        "/analyze-sentiment/",
        b"text=hi",
        {"content-type": "application/x-www-form-urlencoded"},
        415,
        "unsupported_media_type",
        "Content-Type must be application/json, got 'application/x-www-form-urlencoded'",
    ),
    (
        "no content type",
        "POST",
        "/predict/batch",
        b'{"texts": ["hi"]}',
        {},
        415,
        "unsupported_media_type",
        "Content-Type must be application/json, got none",
    ),
    (
        "wrong method",
        "GET",
        "/predict",
        None,
        {},
        405,
        "method_not_allowed",
        "Method GET is not allowed for /predict; use POST",
    ),
    (
        "wrong method on GET route",
        "DELETE",
        "/info",
        None,
        {},
        405,
        "method_not_allowed",
        "Method DELETE is not allowed for /info; use GET",
    ),
    ("unknown path", "GET", "/nope", None, {}, 404, "not_found", "No route for /nope"),
    (
        "empty batch",
        "POST",
        "/predict/batch",
        b'{"texts": []}',
        JSON,
        422,
        "empty_batch",
        "texts must hold at least one text",
    ),
    (
        "oversized batch",
        "POST",
        "/predict/batch",
        b'{"texts": [' + b", ".join([b'"a"'] * 9) + b"]}",
        JSON,
        422,
        "batch_too_large",
        "texts holds 9 items; the limit is 8",
    ),
    (
        "bad item in batch",
        "POST",
        "/predict/batch",
        b'{"texts": ["ok", 3]}',
        JSON,
        422,
        "invalid_type",
        "texts[1]: Input should be a valid string",
    ),
    (
        "blank item in batch",
        "POST",
        "/predict/batch",
        b'{"texts": ["ok", " "]}',
        JSON,
        422,
        "empty_text",
        "texts[1] must not be empty or whitespace only",
    ),
    (
        "long item in batch",
        "POST",
        "/predict/batch",
        b'{"texts": ["ok", "' + b"b" * 300 + b'"]}',
        JSON,
        422,
        "text_too_long",
        "texts[1] has 300 characters; the limit is 280",
    ),
    (
        "batch is not a list",
        "POST",
        "/predict/batch",
        b'{"texts": "hi"}',
        JSON,
        422,
        "invalid_type",
        "texts: Input should be a valid list",
    ),
    (
        "many bad items",
        "POST",
        "/predict/batch",
        b'{"texts": [1, 2, 3, 4, 5]}',
        JSON,
        422,
        "invalid_type",
        "texts[0]: Input should be a valid string; texts[1]: Input should be a "
        "valid string; texts[2]: Input should be a valid string; and 2 more errors",
    ),
]


@pytest.mark.parametrize(
    ("method", "path", "body", "headers", "status", "error_type", "error"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_bad_input_gets_exact_error(
    client: TestClient,
    registry: CollectorRegistry,
    method: str,
    path: str,
    body: bytes | None,
    headers: dict[str, str],
    status: int,
    error_type: str,
    error: str,
) -> None:
    endpoint = path if path in ("/predict", "/predict/batch", "/analyze-sentiment/") else "other"
    labels = {"error_type": error_type, "endpoint": endpoint}
    before = registry.get_sample_value("sentiment_errors_total", labels)
    response = client.request(method, path, content=body, headers=headers)
    assert response.status_code == status
    assert response.json() == {"error": error, "error_type": error_type}
    assert response.headers["content-type"] == "application/json"
    assert registry.get_sample_value("sentiment_errors_total", labels) == (before or 0) + 1


def test_a_body_streamed_past_the_limit_is_refused(client: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"text": "'
        for _ in range(10):
            yield b"a" * 1000
        yield b'"}'

    response = client.post("/predict", content=chunks(), headers=JSON)
    assert response.status_code == 413
    assert response.json() == {
        "error": "Request body is larger than the limit of 4096 bytes",
        "error_type": "body_too_large",
    }


def test_405_names_the_allowed_method(client: TestClient) -> None:
    response = client.get("/predict/batch")
    assert response.headers["allow"] == "POST"


def test_extra_fields_are_ignored(client: TestClient) -> None:
    response = client.post("/predict", json={"text": "I love it", "lang": "en"})
    assert response.status_code == 200

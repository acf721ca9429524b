"""docs/asyncapi.yaml: valid AsyncAPI 3.0.0, its references resolve, it says what the code does.

The official AsyncAPI 3.0.0 JSON Schema comes from the npm package `@asyncapi/specs`, pinned by
scripts/asyncapi/package-lock.json and installed into the cache by `make test` (never fetched
at test time once cached; no npm is an error, not a skip).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any
from urllib.parse import urldefrag

import pytest
import yaml
from jsonschema import Draft7Validator, Draft202012Validator

from config import Settings
from events import contract, topics
from events.codec import ERROR_CODES, decode
from events.schema import RecordCreated
from scripts.asyncapi_spec import schema_path

DOC_PATH = contract.ASYNCAPI_FILE


@pytest.fixture(scope="module")
def asyncapi_validator() -> Draft7Validator:
    """The official AsyncAPI 3.0.0 schema (draft-07, every definition bundled in the file)."""
    official = json.loads(schema_path("3.0.0").read_text(encoding="utf-8"))
    assert official["$id"] == "http://asyncapi.com/definitions/3.0.0/asyncapi.json"
    return Draft7Validator(official)


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    return yaml.safe_load(DOC_PATH.read_text(encoding="utf-8"))


def pointer(document: Any, fragment: str) -> Any:
    """The value a JSON pointer (`/a/b`, RFC 6901) names in `document`."""
    node = document
    for part in fragment.lstrip("/").split("/") if fragment else []:
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def resolve(doc: dict[str, Any], ref: str) -> tuple[Path, Any]:
    """(file, value) a `$ref` of the document names: inside it, or in a file beside it."""
    target, fragment = urldefrag(ref)
    if not target:
        return DOC_PATH, pointer(doc, fragment)
    path = (DOC_PATH.parent / target).resolve()
    return path, pointer(json.loads(path.read_text(encoding="utf-8")), fragment)


def refs(node: Any) -> list[str]:
    """Every `$ref` in a document, depth first."""
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [ref for value in node.values() for ref in refs(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in refs(value)]
    return []


def test_the_document_is_valid_asyncapi_3(
    doc: dict[str, Any], asyncapi_validator: Draft7Validator
) -> None:
    errors = [
        f"{list(e.absolute_path)}: {e.message[:200]}" for e in asyncapi_validator.iter_errors(doc)
    ]
    assert errors == []
    assert doc["asyncapi"] == "3.0.0"


@pytest.mark.parametrize(
    ("where", "change"),
    [
        ("asyncapi", lambda d: d.update(asyncapi="3.0")),
        ("channel address", lambda d: d["channels"]["recordEvents"].update(address=5)),
        ("operation action", lambda d: d["operations"]["countRecordEvents"].update(action="get")),
        ("kafka binding", lambda d: d["channels"]["deadLetters"]["bindings"]["kafka"].update(x=1)),
        ("unknown field", lambda d: d["info"].update(owner="us")),
    ],
)
def test_the_official_schema_catches_mistakes(
    doc: dict[str, Any], asyncapi_validator: Draft7Validator, where: str, change: Any
) -> None:
    broken = copy.deepcopy(doc)
    change(broken)
    assert not asyncapi_validator.is_valid(broken), where


def test_every_reference_resolves(doc: dict[str, Any]) -> None:
    found = refs(doc)
    assert len(found) >= 8
    for ref in found:
        resolve(doc, ref)  # raises KeyError / OSError when it does not


def test_the_message_schema_is_the_json_schema_file(doc: dict[str, Any]) -> None:
    message = doc["components"]["messages"]["recordCreated"]
    payload = message["payload"]
    assert payload["schemaFormat"] == "application/schema+json;version=draft-2020-12"
    path, schema = resolve(doc, payload["schema"]["$ref"])
    assert path == contract.SCHEMA_FILE
    assert schema == json.loads(contract.SCHEMA_FILE.read_text(encoding="utf-8"))
    (key_ref,) = [item["$ref"] for item in message["bindings"]["kafka"]["key"]["allOf"]]
    key_path, key_schema = resolve(doc, key_ref)
    assert key_path == contract.SCHEMA_FILE
    assert key_schema == schema["properties"]["org_id"]


def test_channels_and_operations_name_the_real_topics(doc: dict[str, Any]) -> None:
    topic = Settings().record_events_topic
    assert doc["channels"]["recordEvents"]["address"] == topic
    assert doc["channels"]["deadLetters"]["address"] == topics.dlq_topic_for(topic)
    for channel in doc["channels"].values():
        retention = channel["bindings"]["kafka"]["topicConfiguration"]["retention.ms"]
        assert str(retention) == topics.TOPIC_CONFIGS["retention.ms"]
    for operation in doc["operations"].values():
        channel_ref = operation["channel"]["$ref"]
        for message in operation["messages"]:
            # AsyncAPI 3: an operation's messages are messages of its own channel.
            assert message["$ref"].startswith(channel_ref + "/messages/")
    actions = {name: op["action"] for name, op in doc["operations"].items()}
    assert actions == {"countRecordEvents": "receive", "deadLetterBadEvents": "send"}


def test_dead_letter_headers_are_the_projectors(doc: dict[str, Any]) -> None:
    headers = doc["components"]["messages"]["deadLetter"]["headers"]
    names = [
        topics.HEADER_ERROR_CODE,
        topics.HEADER_ERROR_MESSAGE,
        topics.HEADER_SOURCE_TOPIC,
        topics.HEADER_SOURCE_PARTITION,
        topics.HEADER_SOURCE_OFFSET,
    ]
    assert headers["required"] == names
    assert list(headers["properties"]) == names
    code = headers["properties"][topics.HEADER_ERROR_CODE]
    assert code["enum"] == list(ERROR_CODES)
    for name in ERROR_CODES:
        assert f"`{name}`" in code["description"]


def test_the_examples_are_what_the_service_reads_and_writes(doc: dict[str, Any]) -> None:
    messages = doc["components"]["messages"]
    schema = json.loads(contract.SCHEMA_FILE.read_text(encoding="utf-8"))
    payload_check = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    for example in messages["recordCreated"]["examples"]:
        payload_check.validate(example["payload"])
        raw = json.dumps(example["payload"]).encode()
        assert isinstance(decode(raw, example["payload"]["org_id"].encode()), RecordCreated)
    header_check = Draft7Validator(messages["deadLetter"]["headers"])
    for example in messages["deadLetter"]["examples"]:
        header_check.validate(example["headers"])

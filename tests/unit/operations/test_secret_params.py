"""Secret parameters: declared by their type, sealed when stored, opened by the worker
just before the job runs, sealed again in the parts of a split job, masked when shown."""

from __future__ import annotations

import json
import typing
from multiprocessing import Pipe
from pathlib import Path
from typing import Any

import pikepdf
import pytest
from pydantic import BaseModel, SecretStr

from bench.scoring import corpus_root
from docworker.config import load_settings
from docworker.errors import SecretUnreadable
from docworker.jobs.worker import run_job
from docworker.operations import (
    OPERATIONS,
    dump_params,
    get_operation,
    open_params,
    public_params,
    reseal_params,
    secret_fields,
    validate_params,
)
from docworker.sealing import SecretKeys, is_sealed, new_key
from docworker.storage import BlobStore

CORPUS = corpus_root()
ENCRYPTED = CORPUS / "pdf" / "encrypted-password-1234.pdf"
SCAN = CORPUS / "pdf" / "scanned-ocr-test.pdf"
#: Words in a parameter's name that say it holds a secret.
SECRET_WORDS = ("password", "passphrase", "secret", "credential", "api_key")


def _models(model: type[BaseModel], seen: set[type[BaseModel]]) -> list[type[BaseModel]]:
    """``model`` and every model its fields nest, at any depth."""
    if model in seen:
        return []
    seen.add(model)
    found = [model]
    for info in model.model_fields.values():
        for inner in _types(info.annotation):
            if isinstance(inner, type) and issubclass(inner, BaseModel):
                found += _models(inner, seen)
    return found


def _types(annotation: Any) -> list[Any]:
    return [annotation, *(t for arg in typing.get_args(annotation) for t in _types(arg))]


def test_each_operation_declares_its_secrets() -> None:
    declared = {name: secret_fields(op.Params) for name, op in OPERATIONS.items()}
    assert {name: sorted(fields) for name, fields in declared.items() if fields} == {
        "extract": ["password"],
        "chunk": ["password"],
        "ocr": ["password"],
        "render": ["password"],
        "convert": ["password"],
        "pdf": ["owner_password", "password", "user_password"],
        "unpack": ["password"],
    }


@pytest.mark.parametrize("name", sorted(OPERATIONS))
def test_a_parameter_named_as_a_secret_is_typed_as_one(name: str) -> None:
    """Sealing follows the type: a password typed ``str`` would be stored in clear, and
    one nested in a sub-model would not be found (only top-level secrets are sealed)."""
    top = OPERATIONS[name].Params
    for model in _models(top, set()):
        for field, info in model.model_fields.items():
            secret = SecretStr in _types(info.annotation)
            if any(word in field.lower() for word in SECRET_WORDS):
                assert secret, f"{model.__name__}.{field} holds a secret: type it SecretStr"
            if secret:
                assert model is top, f"{model.__name__}.{field}: secrets are top-level only"


def test_stored_params_hold_no_secret_and_open_to_the_same() -> None:
    keys = SecretKeys([new_key()])
    operation = get_operation("pdf")
    given = {"action": "encrypt", "user_password": "u-1", "owner_password": "o-2"}
    stored = dump_params(validate_params(operation, given), keys)
    assert "u-1" not in json.dumps(stored) and "o-2" not in json.dumps(stored)
    assert is_sealed(stored["user_password"]) and is_sealed(stored["owner_password"])
    opened = open_params(operation, stored, keys)
    assert opened == validate_params(operation, given)
    with pytest.raises(SecretUnreadable):
        open_params(operation, stored, SecretKeys([new_key()]))


def test_shown_params_mask_secrets_sealed_or_not() -> None:
    keys = SecretKeys([new_key()])
    stored = {"output": "text", "password": keys.seal("p")}
    assert public_params("extract", stored) == {"output": "text", "password": "********"}
    # Stored in clear by a version before sealing.
    assert public_params("extract", {"password": "p"}) == {"password": "********"}
    assert public_params("retired-operation", {"x": keys.seal("p")}) == {"x": "********"}


def test_reseal_moves_every_secret_to_the_first_key() -> None:
    old, new = SecretKeys([new_key()]), new_key()
    ring = SecretKeys([new, *old.export()])
    stored = {"action": "encrypt", "user_password": old.seal("u"), "owner_password": "o"}
    resealed = reseal_params("pdf", stored, ring)
    assert resealed is not None and resealed["action"] == "encrypt"
    only_new = SecretKeys([new])
    assert only_new.open(resealed["user_password"]) == "u"
    assert only_new.open(resealed["owner_password"]) == "o"
    assert reseal_params("pdf", resealed, ring) is None
    with pytest.raises(SecretUnreadable):
        reseal_params("pdf", stored, only_new)


def _run(
    tmp_path: Path, path: Path, operation: str, params: dict[str, Any], keys: SecretKeys
) -> dict[str, Any]:
    """One job through the worker's own entry, as the supervisor would send it."""
    settings = load_settings(
        data_dir=tmp_path, executor={"workers": 2, "split_min_pages": 2, "split_parts": 2}
    )
    blobs = BlobStore(settings.storage_url)
    blob = blobs.put_file(path)
    message = {
        "type": "run",
        "job_id": "job-1",
        "operation": operation,
        "params": params,
        "input": {"uri": blob.uri, "sha256": blob.sha256, "name": path.name},
        "parent_id": None,
    }
    ours, _theirs = Pipe()
    return run_job(ours, blobs, message, settings, keys)


def test_the_worker_opens_secrets_just_before_the_job_runs(tmp_path: Path) -> None:
    keys = SecretKeys([new_key()])
    stored = {"output": "text", "password": keys.seal("1234")}
    done = _run(tmp_path, ENCRYPTED, "extract", stored, keys)
    assert done["type"] == "done", done
    failed = _run(tmp_path, ENCRYPTED, "extract", stored, SecretKeys([new_key()]))
    assert failed["type"] == "error"
    assert failed["error"]["code"] == "secret-unreadable"


def test_parts_of_a_split_job_get_the_secret_sealed(tmp_path: Path) -> None:
    scan = tmp_path / "scan.pdf"
    with pikepdf.open(SCAN) as pdf:
        pdf.pages.append(pdf.pages[0])
        pdf.save(scan, encryption=pikepdf.Encryption(user="Scan-Pass-42", owner="x", R=6))
    keys = SecretKeys([new_key()])
    stored = {"output": "text", "password": keys.seal("Scan-Pass-42")}
    split = _run(tmp_path, scan, "extract", stored, keys)
    assert split["type"] == "split", split
    assert "Scan-Pass-42" not in json.dumps(split)
    assert [part["operation"] for part in split["parts"]] == ["ocr", "ocr"]
    for part in split["parts"]:
        assert keys.open(part["params"]["password"]) == "Scan-Pass-42"
        assert open_params(get_operation("ocr"), part["params"], keys).password is not None

"""A job's own webhook as submitted, the signature, and the retry delays."""

from __future__ import annotations

import base64
import os
import time

import pytest
from standardwebhooks import Webhook

from docworker.config import WebhookSettings
from docworker.errors import InvalidParameter
from docworker.jobs.webhooks import (
    WebhookRequest,
    reseal_webhook,
    retry_delay,
    sign,
    subscriptions,
)
from docworker.sealing import SecretKeys, new_key

SECRET = "whsec_" + base64.b64encode(os.urandom(32)).decode()
PUBLIC = "https://93.184.215.14/hooks/in"  # an address: no name to resolve


def test_the_signature_is_the_standard_one() -> None:
    body, timestamp = '{"type":"job.succeeded"}', int(time.time())
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(SECRET, "msg_1", timestamp, body),
    }
    assert Webhook(SECRET).verify(body, headers) == {"type": "job.succeeded"}


def test_a_webhook_is_stored_with_its_secret_sealed_and_the_events_in_order() -> None:
    keys = SecretKeys([new_key()])
    request = WebhookRequest(PUBLIC, ["succeeded", "started"], SECRET)
    stored = request.checked(WebhookSettings(), keys)
    assert stored["url"] == PUBLIC and stored["events"] == ["started", "succeeded"]
    assert SECRET not in str(stored) and keys.open(stored["secret"]) == SECRET
    rotated = SecretKeys([new_key(), *keys.export()])
    resealed = reseal_webhook(stored, rotated)
    assert resealed is not None and rotated.current(resealed["secret"])
    assert reseal_webhook(resealed, rotated) is None


@pytest.mark.parametrize(
    ("request_", "settings", "field"),
    [
        (WebhookRequest("http://10.1.2.3/in", secret=SECRET), {}, "webhook_url"),
        (WebhookRequest("http://[::1]:8080/in", secret=SECRET), {}, "webhook_url"),
        (WebhookRequest("ftp://93.184.215.14/in", secret=SECRET), {}, "webhook_url"),
        (WebhookRequest(PUBLIC, ["finished"], SECRET), {}, "webhook_events"),
        (WebhookRequest(PUBLIC, [], SECRET), {}, "webhook_events"),
        (WebhookRequest(PUBLIC, secret="not-a-secret"), {}, "webhook_secret"),
        (WebhookRequest(PUBLIC, secret="whsec_" + "A" * 8), {}, "webhook_secret"),
        (WebhookRequest(PUBLIC), {}, "webhook_secret"),
    ],
)
def test_a_webhook_that_cannot_be_sent_is_refused_naming_its_field(
    request_: WebhookRequest, settings: dict[str, object], field: str
) -> None:
    with pytest.raises(InvalidParameter) as refused:
        request_.checked(WebhookSettings.model_validate(settings), SecretKeys([new_key()]))
    assert refused.value.fields["parameter"] == field


def test_allow_listed_targets_may_be_private_and_the_server_secret_may_sign() -> None:
    settings = WebhookSettings(allow_private=["10.1.2.3"], secret=SECRET)
    stored = WebhookRequest("http://10.1.2.3/in").checked(settings, SecretKeys([new_key()]))
    assert stored["secret"] is None  # the server's webhooks.secret signs it


def test_the_form_fields_make_a_webhook_only_with_a_url() -> None:
    assert WebhookRequest.of_form(None, None, None) is None
    assert WebhookRequest.of_form("", "", "") is None
    with pytest.raises(InvalidParameter):
        WebhookRequest.of_form(None, "succeeded", None)
    given = WebhookRequest.of_form(PUBLIC, " started , failed ", SECRET)
    assert given == WebhookRequest(PUBLIC, ["started", "failed"], SECRET)


def test_retries_back_off_exponentially_with_jitter_up_to_the_bound() -> None:
    settings = WebhookSettings(backoff=2.0, max_backoff=30.0)
    for attempts, base in [(1, 2.0), (2, 4.0), (3, 8.0), (4, 16.0), (5, 30.0), (12, 30.0)]:
        delays = [retry_delay(settings, attempts) for _ in range(50)]
        assert all(base / 2 <= delay <= base for delay in delays)
        assert len(set(delays)) > 1


def test_a_batch_webhook_chooses_batch_events_only() -> None:
    keys = SecretKeys([new_key()])
    default = WebhookRequest.for_batch(PUBLIC, None, SECRET)
    assert default is not None
    stored = default.checked(WebhookSettings(), keys)
    assert stored["events"] == [
        "batch.succeeded",
        "batch.partial",
        "batch.failed",
        "batch.cancelled",
    ]
    chosen = WebhookRequest.for_batch(PUBLIC, "batch.succeeded, batch.progress", SECRET)
    assert chosen is not None
    assert chosen.checked(WebhookSettings(), keys)["events"] == [
        "batch.progress",
        "batch.succeeded",
    ]
    job_event = WebhookRequest.for_batch(PUBLIC, "succeeded", SECRET)
    assert job_event is not None
    with pytest.raises(InvalidParameter) as refused:
        job_event.checked(WebhookSettings(), keys)
    assert refused.value.fields["parameter"] == "webhook_events"
    assert WebhookRequest.for_batch(None, None, None) is None


def test_a_subscription_may_choose_batch_events() -> None:
    settings = WebhookSettings.model_validate(
        {
            "subscriptions": [
                {
                    "name": "ops",
                    "url": PUBLIC,
                    "secret": SECRET,
                    "events": ["batch.partial", "succeeded"],
                }
            ]
        }
    )
    [subscription] = subscriptions(settings)
    assert subscription.events == {"batch.partial", "succeeded"}
    with pytest.raises(ValueError, match=r"batch\.nothing"):
        WebhookSettings.model_validate(
            {
                "subscriptions": [
                    {"name": "x", "url": PUBLIC, "secret": SECRET, "events": ["batch.nothing"]}
                ]
            }
        )

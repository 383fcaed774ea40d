"""Webhook delivery: retries with growing delays, 410 and other 4xx, dead-letter, per-job callbacks."""

from __future__ import annotations

import itertools
import json
import logging

from devtools.simulator import JobScript
from devtools.webhook_receiver import WebhookReceiver
from jobs.webhooks.sender import describe_url
from tests.conftest import SECRET, VAULT, drain


def _deadletters(tracker, tracking_ids):
    queue = tracker._storage.queue(tracker.settings.deadletter_queue)
    records = [json.loads(text) for text in drain(queue)]
    return [r for r in records if r["trackingId"] in tracking_ids]


def _track(tracker, simulator, **extra):
    job_id = simulator.add_job(VAULT, JobScript(duration=0.3))
    acceptance = tracker.accept_message(json.dumps({"jobId": job_id, "vaultId": VAULT, **extra}))
    return job_id, acceptance.tracking_ids[0]


def test_a_failing_webhook_is_retried_until_it_answers(simulator, tracker, receiver, run_host):
    # JOBS_DELIVERY_FIRST_RETRY_SECONDS is 0.5 here: the schedule alone would retry after about 0.5 s (1 s, the
    # queue's granularity), then 1.5 s; the receiver asks for 2 s each time, and each gap must honour it.
    receiver.respond_with(503, 500, 429, retry_after=2)
    _, tracking_id = _track(tracker, simulator)
    assert run_host(until_idle=True, timeout=60).join() == 0
    answered = [r.answered for r in receiver.requests]
    assert answered == [503, 500, 429, 200]
    times = [r.received_at for r in receiver.requests]
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert all(gap >= 2 - 0.25 for gap in gaps), gaps  # Retry-After: 2 kept (a quarter second for clock rounding)
    assert len({r.headers["webhook-id"] for r in receiver.requests}) == 1  # the same event every time
    assert all(r.verified for r in receiver.requests)
    assert _deadletters(tracker, {tracking_id}) == []


def test_a_503_with_an_unreadable_retry_after_is_retried_on_the_schedule(simulator, tracker, receiver, run_host,
                                                                         wait):
    receiver.respond_with(503, retry_after="soon")  # neither seconds nor an HTTP date: as if absent
    _, tracking_id = _track(tracker, simulator)
    host = run_host()
    assert wait(lambda: len(receiver.delivered()) == 1, 20), [r.answered for r in receiver.requests]
    host.stop()
    assert [r.answered for r in receiver.requests] == [503, 200]
    assert len({r.headers["webhook-id"] for r in receiver.requests}) == 1
    assert _deadletters(tracker, {tracking_id}) == []
    poison = tracker._storage.queue(f"{tracker.settings.deliver_queue}-poison")
    assert drain(poison) == []  # the delivery was never a failed message


def test_410_and_other_4xx_go_to_the_dead_letter_queue_with_url_and_reason(simulator, make_tracker, run_host):
    with WebhookReceiver() as gone, WebhookReceiver() as bad:
        gone.respond_with(410)
        bad.respond_with(400)
        tracker = make_tracker(JOBS_WEBHOOK_URLS=f"{gone.url}?code=secret-key,{bad.url}")
        _, tracking_id = _track(tracker, simulator)
        assert run_host(until_idle=True, timeout=60, for_tracker=tracker).join() == 0
        assert len(gone.requests) == 1 and len(bad.requests) == 1  # neither is retried
        records = _deadletters(tracker, {tracking_id})
        by_target = {r["target"]: r for r in records}
        gone_target, bad_target = describe_url(f"{gone.url}?code=secret-key"), describe_url(bad.url)
        assert set(by_target) == {gone_target, bad_target}
        assert "410" in by_target[gone_target]["reason"]
        assert "400" in by_target[bad_target]["reason"]
        assert "secret-key" not in json.dumps(records)  # the function key in the URL is redacted
        assert by_target[gone_target]["event"]["data"]["jobId"]


def test_an_outage_longer_than_the_retry_window_is_dead_lettered(simulator, make_tracker, receiver, run_host):
    tracker = make_tracker(JOBS_DELIVERY_RETRY_HOURS="0.0006")  # about 2 s
    receiver.set_down(True)
    _, tracking_id = _track(tracker, simulator)
    assert run_host(until_idle=True, timeout=60, for_tracker=tracker).join() == 0
    records = _deadletters(tracker, {tracking_id})
    assert len(records) == 1
    assert "not delivered within" in records[0]["reason"]
    assert records[0]["attempts"] >= 2
    assert records[0]["target"] == describe_url(receiver.url)
    from datetime import datetime

    retried_for = datetime.fromisoformat(records[0]["deadLetteredAt"]) - datetime.fromisoformat(
        records[0]["firstAttemptAt"])
    assert retried_for.total_seconds() >= 0.0006 * 3600  # retried for the whole window, not less


def test_a_callback_url_gets_its_own_subscribers_event_only(simulator, make_tracker, https_receiver, receiver,
                                                             run_host):
    tracker = make_tracker()
    job_id, _ = _track(tracker, simulator, correlationId="with-callback", callbackUrl=https_receiver.url)
    tracker.accept_message(json.dumps({"jobId": job_id, "vaultId": VAULT, "correlationId": "plain"}))
    assert run_host(until_idle=True, timeout=60, for_tracker=tracker).join() == 0
    callback_events = [r.json() for r in https_receiver.delivered()]
    assert [e["data"]["correlationId"] for e in callback_events] == ["with-callback"]
    assert https_receiver.delivered()[0].verified
    assert sorted(r.json()["data"]["correlationId"] for r in receiver.delivered()) == ["plain", "with-callback"]


def test_a_slow_subscriber_does_not_delay_the_others(simulator, make_tracker, receiver, run_host, wait):
    with WebhookReceiver(secret=SECRET) as slow:
        slow.set_hang(8)
        tracker = make_tracker(JOBS_WEBHOOK_URLS=f"{slow.url},{receiver.url}", JOBS_WEBHOOK_TIMEOUT_SECONDS="10")
        for _ in range(3):
            _track(tracker, simulator)
        host = run_host(for_tracker=tracker)
        assert wait(lambda: len(receiver.delivered()) == 3, 6)  # well before the slow one answers
        slow.set_hang(0)
        assert wait(lambda: len(slow.delivered()) >= 3, 30)
        host.stop()


def test_a_receiver_down_for_a_stretch_gets_every_event_once_it_is_back(simulator, tracker, receiver, run_host,
                                                                         wait, caplog):
    caplog.set_level(logging.INFO, logger="jobs.flows.delivery")
    receiver.set_down(True)
    tracking_ids = {_track(tracker, simulator)[1] for _ in range(4)}
    host = run_host()
    assert wait(lambda: not tracker._store.list_index(), 20)  # all ended while the receiver is down
    assert wait(lambda: _pending(tracker) >= 4, 10)  # every delivery waits (retries), none dead-lettered

    def refused_events() -> set[str]:  # event ids whose attempt failed on a refused connection
        return {r.args[1] for r in list(caplog.records)
                if r.getMessage().startswith("delivery attempt ") and "network error" in r.getMessage()}

    assert wait(lambda: len(refused_events()) == 4, 10)  # each event was tried while down, and failed
    receiver.set_down(False)
    assert wait(lambda: len({r.headers["webhook-id"] for r in receiver.delivered()}) == 4, 30)
    host.stop()
    ids = [r.headers["webhook-id"] for r in receiver.delivered()]
    assert sorted(ids) == sorted(refused_events())  # the events tried while down, each delivered once
    assert _deadletters(tracker, tracking_ids) == []


def test_a_receiver_that_hangs_past_the_timeout_is_retried(simulator, make_tracker, receiver, run_host, wait):
    tracker = make_tracker(JOBS_WEBHOOK_TIMEOUT_SECONDS="0.5")
    receiver.set_hang(2)
    _, tracking_id = _track(tracker, simulator)
    host = run_host(for_tracker=tracker)
    # The first attempt is held past the sender's timeout: the sender gives up, so it is no delivery, and a retry
    # must follow. (A hung attempt counted as delivered would never be retried.)
    assert wait(lambda: len(receiver.requests) >= 1, 20)
    receiver.set_hang(0)
    assert wait(lambda: receiver.delivered() and any(r.abandoned for r in receiver.requests), 15), [
        (r.answered, r.abandoned) for r in receiver.requests]
    host.stop()
    first, *retries = sorted(receiver.requests, key=lambda r: r.received_at)
    assert first.abandoned and first.answered == 0  # the sender had hung up before the answer
    assert retries and retries[-1].answered == 200
    assert retries[0].received_at - first.received_at >= 0.5  # a new attempt, after the timeout
    ids = {r.headers["webhook-id"] for r in receiver.requests}
    assert len(ids) == 1  # the retry carried the same id
    assert _deadletters(tracker, {tracking_id}) == []


def _pending(tracker) -> int:
    return tracker._storage.queue(tracker.settings.deliver_queue).get_queue_properties().approximate_message_count

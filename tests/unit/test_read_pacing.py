"""Pacing on ARM's remaining reads (``jobs.arm.pacing``): the header read tolerantly, and a pace that keeps any
number of instances sharing one bucket above its reserve, on a fake clock.
"""

from __future__ import annotations

import math

import pytest
from requests.structures import CaseInsensitiveDict

from jobs.arm import ArmThrottled, ReadBudget, ReadPacer, remaining_reads
from jobs.arm.read_budget import SubscriptionGate

SUB = "11111111-2222-3333-4444-555555555555"


def _reads(value: str) -> dict[str, str]:
    return {"x-ms-ratelimit-remaining-subscription-reads": value}


# -- the header ---------------------------------------------------------------------------------------------------
def test_remaining_reads_from_the_header_in_any_case() -> None:
    assert remaining_reads(_reads("249")) == 249
    assert remaining_reads(CaseInsensitiveDict({"X-Ms-Ratelimit-Remaining-Subscription-Reads": " 17 "})) == 17
    assert remaining_reads({"X-MS-RATELIMIT-REMAINING-SUBSCRIPTION-READS": "3"}) == 3


def test_the_global_bucket_counts_on_the_principals_scale_and_the_lower_wins() -> None:
    both = {**_reads("249"), "x-ms-ratelimit-remaining-subscription-global-reads": "3749"}
    assert remaining_reads(both) == 249  # as ARM answers a fresh principal: 3749 / 15 is 249.9
    busy = {**_reads("249"), "x-ms-ratelimit-remaining-subscription-global-reads": "300"}
    assert remaining_reads(busy) == 20  # other principals drained the subscription
    assert remaining_reads({"x-ms-ratelimit-remaining-subscription-global-reads": "150"}) == 10


@pytest.mark.parametrize("value", ["", "many", "1e999", "nan", "12 reads", "0x10"])
def test_an_unreadable_header_is_as_if_absent(value: str) -> None:
    assert remaining_reads(_reads(value)) is None
    assert remaining_reads({**_reads(value), "x-ms-ratelimit-remaining-subscription-global-reads": "1500"}) == 100


def test_no_header_is_none_and_a_negative_count_is_zero() -> None:
    assert remaining_reads({}) is None
    assert remaining_reads({"x-ms-ratelimit-remaining-subscription-writes": "1199"}) is None
    assert remaining_reads(_reads("-4")) == 0


# -- the pace -----------------------------------------------------------------------------------------------------
class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_no_pace_before_a_level_is_seen_or_while_the_bucket_is_well_filled() -> None:
    clock = FakeClock()
    pacer = ReadPacer(reserve=50, clock=clock)
    assert pacer.delay(SUB) == 0
    pacer.sent(SUB)
    assert pacer.observe(SUB, {}) is None and pacer.delay(SUB) == 0  # an answer without the header: no information
    pacer.observe(SUB, _reads("150"))  # pace_below is 150 (halfway between the reserve and 250)
    assert pacer.delay(SUB) == 0


def test_the_pace_slows_as_the_level_falls_and_waits_out_the_reserve() -> None:
    clock = FakeClock()
    pacer = ReadPacer(reserve=50, clock=clock)
    delays = []
    for level in (140, 100, 60, 50, 20):
        pacer.sent(SUB)
        pacer.observe(SUB, _reads(str(level)))
        delays.append(pacer.delay(SUB))
    assert delays == sorted(delays) and delays[0] > 0
    # Under the reserve, the next read waits at least until the refill has brought the bucket back over it.
    assert delays[-1] >= (50 - 20) / 25
    pacer.observe(SUB, _reads("0"))
    assert pacer.delay(SUB) > 2


def test_the_level_is_the_last_reported_one_plus_the_refill_since() -> None:
    clock = FakeClock()
    pacer = ReadPacer(clock=clock)
    pacer.observe(SUB, _reads("10"))
    clock.now += 2
    assert pacer.level(SUB) == 60
    clock.now += 60
    assert pacer.level(SUB) == 250  # never above the bucket
    assert pacer.level("another-subscription") is None


@pytest.mark.parametrize("instances", [1, 2, 5, 20])
def test_instances_pacing_on_one_bucket_never_empty_it_and_share_its_refill(instances: int) -> None:
    """N instances, each with its own pacer and one read in flight, against ARM's bucket (250, 25/s) on a fake
    clock: the bucket never goes under the reserve by more than the instances' reads in flight, no read is refused,
    and together they still get about the refill rate."""
    clock = FakeClock()
    pacers = [ReadPacer(reserve=50, clock=clock) for _ in range(instances)]
    tokens, updated = 250.0, clock.now
    next_at = [clock.now + i * 0.001 for i in range(instances)]  # each instance wants to read all the time
    lowest, refused, reads, start = math.inf, 0, 0, clock.now
    while clock.now < start + 120:
        i = min(range(instances), key=next_at.__getitem__)
        clock.now = next_at[i]
        wait = pacers[i].delay(SUB)
        if wait > 0:
            next_at[i] = clock.now + wait
            continue
        pacers[i].sent(SUB)
        tokens = min(250.0, tokens + (clock.now - updated) * 25)
        updated = clock.now
        if tokens < 1:
            refused += 1
        else:
            tokens -= 1
            reads += 1
        lowest = min(lowest, tokens)
        pacers[i].observe(SUB, _reads(str(math.floor(tokens))))
        next_at[i] = clock.now + 0.005  # the answer's round trip
    assert refused == 0
    assert lowest >= 50 - instances
    rate = (reads - 250) / 120
    assert 0.9 * 25 <= rate <= 25.01, rate


def test_the_gate_raises_a_long_pace_so_the_caller_reschedules_and_sleeps_a_short_one() -> None:
    clock = FakeClock()
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock.now += seconds

    pacer = ReadPacer(reserve=50, clock=clock)
    gate = SubscriptionGate(budget=ReadBudget(clock=clock), pacer=pacer, clock=clock, sleep=sleep)
    gate.admit(SUB)
    gate.observe(SUB, _reads("0"))
    with pytest.raises(ArmThrottled) as raised:
        gate.admit(SUB)
    assert raised.value.code == "SubscriptionReadsLow" and raised.value.retry_at > clock.now + 2
    assert slept == []
    clock.now += 2  # the refill brought the bucket back to 50: a short pace, slept
    gate.admit(SUB)
    assert len(slept) == 1 and 0 < slept[0] <= 2


def test_a_reserve_outside_the_bucket_is_refused() -> None:
    with pytest.raises(ValueError):
        ReadPacer(reserve=250)
    with pytest.raises(ValueError):
        ReadPacer(reserve=-1)


def test_the_client_from_the_settings_paces_with_the_configured_reserve() -> None:
    from jobs.arm import ArmClient
    from jobs.config import Settings

    settings = Settings.from_env({"AzureWebJobsStorage": "UseDevelopmentStorage=true", "JOBS_ARM_TOKEN": "t",
                                  "JOBS_ARM_READ_RESERVE": "120"})
    pacer = ArmClient.from_settings(settings).gate.pacer
    assert (pacer.capacity, pacer.refill_per_second, pacer.reserve) == (250, 25, 120)

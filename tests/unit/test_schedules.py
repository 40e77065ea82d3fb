"""infra.local.schedules.next_fire: rate(), cron() and at() as EventBridge reads them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from infra.local.schedules import VirtualClock, next_fire

# A Sunday, late evening UTC.
SUNDAY_NIGHT = datetime(2026, 11, 22, 23, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("expression", "delta"),
    [
        ("rate(5 minutes)", timedelta(minutes=5)),
        ("rate(1 minute)", timedelta(minutes=1)),
        ("rate(1 hour)", timedelta(hours=1)),
        ("rate(12 hours)", timedelta(hours=12)),
        ("rate(1 day)", timedelta(days=1)),
        ("rate(7 days)", timedelta(days=7)),
        ("  rate(5 minutes)  ", timedelta(minutes=5)),
    ],
)
def test_given_a_rate_when_asked_for_the_next_fire_then_it_is_one_interval_later(
    expression: str, delta: timedelta
) -> None:
    assert next_fire(expression, SUNDAY_NIGHT) == SUNDAY_NIGHT + delta


def test_given_daily_noon_cron_when_after_noon_then_next_is_tomorrow_noon_utc() -> None:
    fire = next_fire("cron(0 12 * * ? *)", SUNDAY_NIGHT)

    assert fire == datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    assert fire is not None
    assert fire.utcoffset() == timedelta(0)


def test_given_daily_noon_cron_when_before_noon_then_next_is_today_noon() -> None:
    morning = datetime(2026, 11, 22, 11, 59, 30, tzinfo=UTC)

    assert next_fire("cron(0 12 * * ? *)", morning) == datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def test_given_a_cron_when_exactly_on_a_firing_then_the_next_one_is_strictly_after() -> None:
    noon = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)

    assert next_fire("cron(0 12 * * ? *)", noon) == datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def test_given_aws_day_of_week_2_when_asked_then_it_fires_on_monday() -> None:
    # AWS numbers days 1-7 from SUNDAY, so 2 is MONDAY (cron's 2 would be Tuesday).
    fire = next_fire("cron(0 9 ? * 2 *)", SUNDAY_NIGHT)

    assert fire == datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    assert fire is not None
    assert fire.strftime("%A") == "Monday"


def test_given_aws_day_of_week_1_when_asked_then_it_fires_on_sunday() -> None:
    fire = next_fire("cron(0 9 ? * 1 *)", SUNDAY_NIGHT)

    assert fire == datetime(2026, 11, 29, 9, 0, tzinfo=UTC)
    assert fire is not None
    assert fire.strftime("%A") == "Sunday"


@pytest.mark.parametrize("dow", ["2-6", "MON-FRI"])
def test_given_weekdays_cron_when_after_friday_then_next_is_monday(dow: str) -> None:
    friday_evening = datetime(2026, 11, 27, 18, 0, tzinfo=UTC)

    fire = next_fire(f"cron(0 9 ? * {dow} *)", friday_evening)

    assert fire == datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def test_given_a_cron_in_a_timezone_when_asked_then_the_result_is_the_utc_instant() -> None:
    # 09:00 in Berlin is 08:00 UTC in winter (CET, UTC+1)
    fire = next_fire("cron(0 9 * * ? *)", SUNDAY_NIGHT, "Europe/Berlin")

    assert fire == datetime(2026, 11, 23, 8, 0, tzinfo=UTC)


def test_given_a_year_field_that_excludes_this_year_when_asked_then_it_fires_in_the_first_allowed_year() -> None:
    fire = next_fire("cron(0 12 * * ? 2027)", SUNDAY_NIGHT)

    assert fire == datetime(2027, 1, 1, 12, 0, tzinfo=UTC)


def test_given_a_year_list_when_asked_then_years_outside_it_are_skipped() -> None:
    fire = next_fire("cron(0 12 1 * ? 2025,2027)", SUNDAY_NIGHT)

    assert fire == datetime(2027, 1, 1, 12, 0, tzinfo=UTC)


def test_given_a_year_range_in_the_past_when_asked_then_there_is_no_next_fire() -> None:
    assert next_fire("cron(0 12 * * ? 2020-2025)", SUNDAY_NIGHT) is None


def test_given_a_year_range_including_this_year_when_asked_then_it_fires_normally() -> None:
    assert next_fire("cron(0 12 * * ? 2025-2027)", SUNDAY_NIGHT) == datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def test_given_an_hourly_cron_limited_to_a_later_year_when_asked_then_it_fires_in_that_year() -> None:
    assert next_fire("cron(0 * * * ? 2028)", SUNDAY_NIGHT) == datetime(2028, 1, 1, 0, 0, tzinfo=UTC)


def test_given_the_first_monday_of_the_month_when_asked_then_it_fires_on_that_monday() -> None:
    assert next_fire("cron(0 9 ? * 2#1 *)", SUNDAY_NIGHT) == datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


def test_given_the_last_friday_of_the_month_when_asked_then_it_fires_on_that_friday() -> None:
    assert next_fire("cron(0 9 ? * 6L *)", SUNDAY_NIGHT) == datetime(2026, 11, 27, 9, 0, tzinfo=UTC)


def test_given_an_at_expression_in_the_future_when_asked_then_it_is_that_instant() -> None:
    assert next_fire("at(2030-01-01T00:00:00)", SUNDAY_NIGHT) == datetime(2030, 1, 1, tzinfo=UTC)


def test_given_an_at_expression_in_the_past_when_asked_then_there_is_none() -> None:
    assert next_fire("at(2030-01-01T00:00:00)", datetime(2030, 1, 1, 0, 0, 1, tzinfo=UTC)) is None


def test_given_an_at_expression_exactly_now_when_asked_then_there_is_none() -> None:
    assert next_fire("at(2030-01-01T00:00:00)", datetime(2030, 1, 1, tzinfo=UTC)) is None


def test_given_an_at_expression_with_a_timezone_when_asked_then_it_is_read_in_that_zone() -> None:
    fire = next_fire("at(2030-01-01T00:00:00)", SUNDAY_NIGHT, "America/New_York")

    assert fire == datetime(2030, 1, 1, 5, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "expression",
    [
        "every 5 minutes",
        "rate(5 weeks)",
        "rate(five minutes)",
        "cron(0 12 * * ?)",
        "cron(0 12 * * ? * *)",
        "cron(99 12 * * ? *)",
        "",
    ],
)
def test_given_an_invalid_expression_when_asked_then_value_error(expression: str) -> None:
    with pytest.raises(ValueError, match=r".+"):
        next_fire(expression, SUNDAY_NIGHT)


def test_given_a_virtual_clock_when_read_then_it_is_utc_and_never_goes_back() -> None:
    clock = VirtualClock(scale=60)

    first = clock.now()
    second = clock.now()

    assert clock.scale == 60
    assert first.utcoffset() == timedelta(0)
    assert second >= first

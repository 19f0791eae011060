"""Time windows are parsed once, at load, into one `TimeWindow` type that every rule asks."""

from __future__ import annotations

from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from bot.config import Config, FlowSettings, TimeWindow, in_window, parse_hours
from bot.config import times as times_module

SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.mark.parametrize(("window", "moment", "inside"), [
    ("09:00-23:00", time(9, 0), True),
    ("09:00-23:00", time(8, 59), False),
    ("09:00-23:00", time(23, 0), False),  # the end is outside
    ("22:00-08:00", time(23, 30), True),  # wraps midnight
    ("22:00-08:00", time(7, 59), True),
    ("22:00-08:00", time(8, 0), False),
    ("22:00-08:00", time(12, 0), False),
    ("00:00-00:00", time(3, 0), False),  # empty: no quiet hours at all
])
def test_contains(window, moment, inside):
    assert TimeWindow.parse(window).contains(moment) is inside
    assert in_window(moment, parse_hours(window)) is inside  # the compatibility helpers agree


def test_an_aware_datetime_is_read_in_the_shops_zone():
    window = TimeWindow.parse("09:00-23:00")
    utc_morning = datetime(2026, 3, 2, 1, 30, tzinfo=UTC)  # 09:30 in Shanghai
    assert window.contains(utc_morning, SHANGHAI)
    assert not window.contains(utc_morning, ZoneInfo("Europe/London"))
    with pytest.raises(ValueError, match="zone"):
        window.contains(utc_morning)


def test_shift_out_moves_a_time_inside_to_the_windows_end():
    night = TimeWindow.parse("22:00-08:00")
    evening = datetime(2026, 3, 2, 23, 0, tzinfo=SHANGHAI)
    assert night.shift_out(evening, SHANGHAI) == datetime(2026, 3, 3, 8, 0, tzinfo=SHANGHAI)
    early = datetime(2026, 3, 3, 6, 0, tzinfo=SHANGHAI)
    assert night.shift_out(early, SHANGHAI) == datetime(2026, 3, 3, 8, 0, tzinfo=SHANGHAI)
    noon = datetime(2026, 3, 3, 12, 0, tzinfo=SHANGHAI)
    assert night.shift_out(noon, SHANGHAI) is noon
    with pytest.raises(ValueError, match="aware"):
        night.shift_out(datetime(2026, 3, 3, 23, 0), SHANGHAI)


@pytest.mark.parametrize("bad", ["9-23", "09:00", "25:00-08:00", "09:00-23:60", "", 9])
def test_a_bad_window_is_refused_naming_the_format(bad):
    with pytest.raises(ValidationError, match="is not a window like 09:00-23:00"):
        FlowSettings(working_hours=bad)


def test_windows_are_typed_print_back_as_written_and_assignments_are_parsed_too():
    flows = Config(flows={"working_hours": "08:30-22:00"}).flows
    assert isinstance(flows.working_hours, TimeWindow) and str(flows.working_hours) == "08:30-22:00"
    assert flows.model_dump()["working_hours"] == "08:30-22:00"
    assert FlowSettings(**flows.model_dump()).working_hours == flows.working_hours  # a round trip
    flows.quiet_hours = "00:00-00:00"  # as tests and the demo set it
    assert isinstance(flows.quiet_hours, TimeWindow) and flows.quiet_hours.empty
    with pytest.raises(ValidationError):
        flows.quiet_hours = "never"


def test_no_window_is_parsed_from_text_while_messages_are_answered(engine, monkeypatch):
    """Parsed once at load: answering turns (with the hand-off's working-hours check, the
    chase's quiet hours) never parses a window string again."""
    from bot.app import build
    from bot.models import Inbound, OrderEvent
    from bot.scheduler import ManualClock

    parsed: list[object] = []
    original = TimeWindow.parse.__func__

    def counting(cls, value):
        if isinstance(value, str):
            parsed.append(value)
        return original(cls, value)

    monkeypatch.setattr(times_module.TimeWindow, "parse", classmethod(counting))
    app = build(engine.config, engine=engine, store=":memory:", orders=None,
                clock=ManualClock(datetime(2026, 3, 2, 21, 50, tzinfo=SHANGHAI)))
    store, assistant = app.store, app.assistant
    for i, text in enumerate(["包邮吗", "转人工", "能便宜点吗", "我的快递丢了"]):
        assistant.handle_message(Inbound(platform="t", conversation_id=f"c{i}", customer_id=f"c{i}",
                                         message_id=f"m{i}", text=text))
    assistant.handle_order(OrderEvent(order_id="o1", customer_id="c0", status="created",
                                      at=datetime(2026, 3, 2, 21, 50, tzinfo=SHANGHAI)))
    assert parsed == []
    store.close()

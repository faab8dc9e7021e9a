"""ReachWatch, the pure accumulator behind the `connectivity` block: time on a school
network with and without the broker, sleeps, the morning connection clock, and what
is not kept away from school."""

from __future__ import annotations

from agent.reach import ReachWatch

T0 = 1_800_000_000.0  # any wall-clock second


def test_time_on_a_school_network_goes_to_online_or_unreachable() -> None:
    r = ReachWatch()
    r.look(True, False, T0)
    r.look(True, False, T0 + 30)  # 30 s cut off
    r.look(True, True, T0 + 60)  # the 30 s before this look were still cut off
    r.look(True, True, T0 + 90)  # 30 s online
    out = r.summary()
    assert out is not None
    assert out["school_unreachable_s"] == 60.0
    assert out["school_online_s"] == 30.0
    assert out["broker_ok"] is True


def test_a_gap_longer_than_max_gap_is_a_sleep_and_counts_nothing() -> None:
    r = ReachWatch(max_gap_s=120)
    r.look(True, True, T0)
    r.look(True, True, T0 + 30)
    r.look(True, True, T0 + 30 + 3600)  # the lid was closed for an hour
    r.look(True, True, T0 + 60 + 3600)
    out = r.summary()
    assert out is not None and out["school_online_s"] == 60.0


def test_a_clock_going_backwards_counts_nothing() -> None:
    r = ReachWatch()
    r.look(True, False, T0)
    r.look(True, False, T0 - 10)
    r.look(True, False, T0 + 20)
    out = r.summary()
    assert out is not None and out["school_unreachable_s"] == 30.0


def test_association_while_cut_off_starts_the_clock_that_the_first_ack_stops() -> None:
    r = ReachWatch()
    r.look(False, False, T0)  # at home, no broker
    r.look(True, False, T0 + 30)  # associates with the school's Wi-Fi
    r.failed("dns")
    r.look(True, False, T0 + 60)
    r.acked(12.0, T0 + 75.5)  # the retained "online" status' PUBACK
    r.look(True, True, T0 + 90)
    out = r.summary()
    assert out is not None
    assert out["connect_delay_s"] == 45.5
    assert out["broker_rtt_ms"] == 12.0
    assert out["failure"] == "dns" and out["failed_attempts"] == 1
    assert out["dns_ok"] is False
    # Sent once: the next window has no delay, and no failure.
    r.look(True, True, T0 + 120)
    nxt = r.summary()
    assert nxt is not None and nxt["connect_delay_s"] is None and nxt["failed_attempts"] == 0


def test_association_while_already_connected_measures_no_delay() -> None:
    r = ReachWatch()
    r.look(False, True, T0)  # connected through the home network
    r.look(True, True, T0 + 30)  # walks into school, still connected (roaming)
    r.acked(8.0, T0 + 40)
    out = r.summary()
    assert out is not None and out["connect_delay_s"] is None


def test_waking_up_on_the_school_network_restarts_the_clock() -> None:
    r = ReachWatch(max_gap_s=120)
    r.look(True, False, T0)
    r.look(True, False, T0 + 7200)  # woke up two hours later, broker not yet there
    r.acked(5.0, T0 + 7203)
    out = r.summary()
    assert out is not None and out["connect_delay_s"] == 3.0


def test_leaving_school_before_the_broker_answers_measures_no_delay() -> None:
    r = ReachWatch()
    r.look(True, False, T0)
    r.look(False, False, T0 + 30)
    r.acked(9.0, T0 + 40)  # answered at home
    out = r.summary()
    assert out is not None and out["connect_delay_s"] is None and out["broker_rtt_ms"] is None


def test_nothing_is_kept_away_from_school() -> None:
    r = ReachWatch()
    r.look(False, False, T0)
    r.failed("connect")
    r.dns(False)
    r.gateway(False)
    r.acked(30.0, T0 + 10)
    r.look(False, True, T0 + 30)
    assert r.summary() is None  # no block at all for a report taken at home
    r.look(True, True, T0 + 60)
    out = r.summary()
    assert out is not None
    assert out["failed_attempts"] == 0 and out["failure"] is None
    assert out["dns_ok"] is None and out["gateway_ok"] is None and out["broker_rtt_ms"] is None


def test_a_window_that_left_school_still_describes_its_school_time() -> None:
    r = ReachWatch()
    r.look(True, True, T0)
    r.look(True, True, T0 + 30)
    r.look(False, True, T0 + 60)  # left: the 30 s before were on the school network
    out = r.summary()
    assert out is not None
    assert out["school_online_s"] == 60.0
    assert out["broker_ok"] is None  # not on a school network when taken
    assert r.summary() is None  # the next window, at home, has no block


def test_a_lost_connection_counts_as_closed_and_cuts_off() -> None:
    r = ReachWatch()
    r.look(True, True, T0)
    r.failed("closed")
    r.disconnected()
    r.look(True, False, T0 + 30)
    out = r.summary()
    assert out is not None
    assert out["failure"] == "closed" and out["broker_ok"] is False
    # Events carry no time of their own: the interval in which the link changed
    # goes to the state it changed to.
    assert out["school_unreachable_s"] == 30.0 and out["school_online_s"] == 0.0


def test_dns_outcome_lasts_until_a_new_association_and_gateway_one_report() -> None:
    r = ReachWatch()
    r.look(True, False, T0)
    r.dns(True)
    r.gateway(True)
    first = r.summary()
    assert first is not None and first["dns_ok"] is True and first["gateway_ok"] is True
    r.look(True, False, T0 + 30)
    second = r.summary()
    assert second is not None and second["dns_ok"] is True and second["gateway_ok"] is None
    r.look(False, False, T0 + 60)
    r.look(True, False, T0 + 90)  # back after one look away: the same wait goes on
    assert r.summary()["dns_ok"] is True  # type: ignore[index]
    r.look(False, False, T0 + 120)
    r.look(False, False, T0 + 150)
    r.look(True, False, T0 + 180)  # a new association: its resolver is yet to be seen
    third = r.summary()
    assert third is not None and third["dns_ok"] is None


def test_round_trips_are_a_bounded_median() -> None:
    r = ReachWatch()
    r.look(True, True, T0)
    for i in range(1000):
        r.acked(float(i % 10), T0 + i)
    assert len(r.rtts_ms) <= 256
    out = r.summary()
    assert out is not None and 0.0 <= out["broker_rtt_ms"] <= 9.0


def test_the_median_of_an_even_count_is_the_mean_of_the_middle_two() -> None:
    r = ReachWatch()
    r.look(True, True, T0)
    for rtt in (10.0, 1.0, 3.0, 2.0):
        r.acked(rtt, T0 + 1)
    out = r.summary()
    assert out is not None and out["broker_rtt_ms"] == 2.5


def test_a_short_wifi_drop_while_waiting_keeps_the_first_association() -> None:
    """The Wi-Fi drops for one look while the laptop waits for the broker: the
    morning's wait is counted from the first association, not from the return."""
    w = ReachWatch(max_gap_s=120.0)
    w.look(True, False, 0.0)
    w.look(True, False, 30.0)
    w.look(False, False, 60.0)  # off the network at one look
    w.look(True, False, 90.0)
    w.acked(25.0, 200.0)
    assert w.connect_delay_s == 200.0
    # Away for the rest of the day then back the next morning: a new clock.
    w2 = ReachWatch(max_gap_s=120.0)
    w2.look(True, False, 0.0)
    w2.look(False, False, 30.0)
    w2.look(False, False, 60.0)  # a second look away: the first wait is over
    w2.look(True, False, 90.0)
    w2.acked(None, 100.0)
    assert w2.connect_delay_s == 10.0

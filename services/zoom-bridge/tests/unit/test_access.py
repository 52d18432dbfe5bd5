"""Who sees what of a day's meeting (R-ZOOM-3): a pure rule."""

from __future__ import annotations

import pytest

from te_shared import rules
from te_shared.contracts import EnrollmentStatus
from zoom_bridge.meetings.service import Audience, audience


@pytest.mark.parametrize("status", sorted(EnrollmentStatus))
def test_r_zoom_3_the_join_link_goes_to_seat_holders_only(status: EnrollmentStatus) -> None:
    seen = audience(is_admin=False, is_organizer=False, seat_status=status.value)
    assert seen == (Audience.SEAT if status in rules.JOIN_LINK else None)


def test_r_zoom_3_the_host_link_goes_to_admins_and_the_organizer() -> None:
    assert audience(is_admin=True, is_organizer=False, seat_status=None) is Audience.HOST
    assert audience(is_admin=False, is_organizer=True, seat_status="pending") is Audience.HOST
    assert audience(is_admin=False, is_organizer=False, seat_status=None) is None

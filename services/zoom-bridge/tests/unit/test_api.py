"""The Zoom adapter's pure parts: how a meeting id or instance UUID goes into a path."""

from __future__ import annotations

from zoom_bridge.zoom.api import meeting_ref


def test_r_zoom_5_meeting_ids_and_uuids_are_encoded_as_zoom_asks() -> None:
    assert meeting_ref("85746065432") == "85746065432"
    assert meeting_ref("4444AAAiAAAAAiAiAiiAii==") == "4444AAAiAAAAAiAiAiiAii%3D%3D"
    assert meeting_ref("ab+c/d==") == "ab%2Bc%2Fd%3D%3D"  # once: no leading / nor //
    # a UUID that begins with / or contains // is encoded twice
    assert meeting_ref("/ajXp112QmuoKj4854875==") == "%252FajXp112QmuoKj4854875%253D%253D"
    assert meeting_ref("ab//cd==") == "ab%252F%252Fcd%253D%253D"

"""Zoom simulator: a stand-in for zoom.us in local runs and tests."""

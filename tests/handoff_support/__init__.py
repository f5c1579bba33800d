"""Private helpers of the WebSocket hand-off tests (tests/test_handoff_*.py)."""

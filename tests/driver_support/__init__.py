"""Private helpers of the uWSGI and waitress driver tests (tests/test_driver_*.py)."""

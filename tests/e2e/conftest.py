"""Browser tests: the fixtures (browser, page, csp_violations) live in tests/browser.py."""

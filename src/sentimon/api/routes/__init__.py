"""One router per file, wired together in api/router.py."""

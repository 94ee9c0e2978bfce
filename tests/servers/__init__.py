"""Servers the tests start themselves (their own binaries, temporary folders, free ports)."""

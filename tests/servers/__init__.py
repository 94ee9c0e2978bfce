"""Servers the tests start themselves (Redis, PostgreSQL) on free ports in temporary folders."""

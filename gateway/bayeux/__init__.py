"""The Bayeux protocol, pure Python: no aiohttp, no transport concerns."""

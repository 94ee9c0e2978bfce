"""The aiohttp edge of Bayeux: bytes and HTTP/WebSocket framing in, protocol calls, bytes out."""

"""What travels between the layers: channel names and patterns, Bayeux messages. Imports nothing of the gateway."""

"""Persistence behind a small interface: contacts, their history and reservations."""

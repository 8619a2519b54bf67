"""Renders and sends the weekly digests (a later issue)."""

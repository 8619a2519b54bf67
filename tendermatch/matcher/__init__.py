"""Matches stored notices to enterprise profiles (a later issue)."""

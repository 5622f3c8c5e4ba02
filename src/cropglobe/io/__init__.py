"""Readers and writers. Every reader validates its input once and returns the data contract."""

"""Conversations and the messages in them: creating, posting, reading, catching up."""

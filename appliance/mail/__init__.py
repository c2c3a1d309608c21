"""Voicemail by email: the SMTP conversation and the engine's mailer thread."""

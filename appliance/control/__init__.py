"""The engine's control API: HTTP/JSON and an event stream over a Unix socket."""

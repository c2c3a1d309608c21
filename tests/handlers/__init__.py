"""Feature handlers on the fake telephony port: no pjsua2, no sockets, no waiting."""

"""Health checks: is a trunk's SIP peer answering? (stdlib only, so any process can probe)."""

from appliance.health.probe import OptionsResponder, ProbeResult, sip_options

__all__ = ["OptionsResponder", "ProbeResult", "sip_options"]

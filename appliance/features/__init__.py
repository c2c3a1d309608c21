"""Feature handlers: what Keepline does with calls, one handler per feature.

Each handler is built with its dependencies (the telephony port, the clock, the
event bus, the stores: a :class:`~appliance.features.context.Context`) and owns
the call-leg roles of its feature. None of them imports pjsua2: they act on calls
only through :class:`~appliance.sip.telephony.Telephony`. The list of handlers is
in :mod:`appliance.features.wiring`.
"""

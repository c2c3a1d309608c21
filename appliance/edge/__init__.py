"""The edge: Kamailio as registrar and front door for the phones.

Kamailio authenticates phones against a subscriber table derived from
config.json (:mod:`.subscribers`), bans sources that keep failing, keeps the
location of registered phones in memory, and forwards calls between phones
and the engine. This package renders its config (:mod:`.render`), runs it as a
child process in development and tests (:mod:`.process`), and asks it which
extensions are registered (:mod:`.rpc`).
"""

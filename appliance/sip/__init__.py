"""The only package that imports pjsua2: endpoint, calls, media.

Every pjsua2 call happens on the one engine thread (see ``engine.py``).
"""

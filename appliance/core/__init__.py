"""Pure domain logic: decisions only, no I/O, no pjsua2, clock injected by callers."""

/*
 * Keepline's pjproject build settings, copied to pjlib/include/pj/config_site.h
 * by image/build-pjsua2.sh before ./configure (pjproject 2.15.1).
 *
 * Why: pjsua clamps the maxCalls the engine asks for (appliance/sip/engine.py)
 * to PJSUA_MAX_CALLS, 4 by default, which is a two-call office: each call
 * through the engine holds two legs. The engine reads the limit it got at run
 * time (appliance/sip/capacity.py), so raising these numbers needs no code
 * change. The PyPI pjsua2-python wheels used on x86_64 keep pjproject's
 * defaults; only this source build (aarch64, the Raspberry Pi) raises them.
 *
 * Each value below is a ceiling for tables pjsua allocates at start-up, so
 * higher costs memory (a few MB in all, fine on a Pi), not CPU.
 */
#ifndef KEEPLINE_CONFIG_SITE_H
#define KEEPLINE_CONFIG_SITE_H

/* Default 4 (since pjproject PR #2654). 128 legs: 64 calls bridged through
 * the engine, or 128 callers waiting in queues. pjproject's own
 * config_site_sample.h uses 512 for PJ_CONFIG_MAXIMUM_SPEED; the engine asks
 * for 512 and takes what it gets. */
#define PJSUA_MAX_CALLS             128

/* Default 8: the engine makes two (edge and trunk); room to grow. */
#define PJSUA_MAX_ACC               16

/* Default 32: hold music is one shared player per music class, but each
 * caller hearing a prompt or a queue announcement holds a player (or
 * playlist) of its own while it plays, so this caps simultaneous prompts:
 * twice the call legs, so every caller can hear one while music classes
 * and retired players (kept until the engine stops) still fit. */
#define PJSUA_MAX_PLAYERS           256

/* Default 32: the engine records nothing today; 16 leaves room and saves
 * the memory of the other 16 slots. */
#define PJSUA_MAX_RECORDERS         16

/* Default 254: every call, player and recorder is a conference port, plus
 * the master port and a few spare. */
#define PJSUA_MAX_CONF_PORTS        (PJSUA_MAX_CALLS + PJSUA_MAX_PLAYERS + \
                                     PJSUA_MAX_RECORDERS + 8)

/* Default 64: each call's RTP and RTCP sockets are ioqueue handles, so 128
 * calls need 256 and more. build-pjsua2.sh configures the epoll ioqueue
 * (--enable-epoll), which has no FD_SETSIZE ceiling; 1024 keeps the select()
 * ioqueue buildable too (it refuses more than FD_SETSIZE, 1024 on Linux), as
 * Asterisk's bundled config_site.h does. */
#define PJ_IOQUEUE_MAX_HANDLES      1024

/* Defaults 1023 and 511; pjsip's hash tables want 2^n - 1. Transactions and
 * dialogs outlive their calls for a while (timer F, Timer D), so a busy box
 * holds several per call slot. */
#define PJSIP_MAX_TSX_COUNT         ((16 * 1024) - 1)
#define PJSIP_MAX_DIALOG_COUNT      ((16 * 1024) - 1)

/* Audio only: no video code or dependencies in the library. */
#define PJMEDIA_HAS_VIDEO           0

#endif /* KEEPLINE_CONFIG_SITE_H */

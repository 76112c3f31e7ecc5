"""Functions run in spawned worker processes (importable by name from `tests/`)."""

from __future__ import annotations


def open_store(url: str) -> str | None:
    """Open (and so migrate) a metadata database; return its schema revision."""
    from modelyard.store import MetadataStore

    store = MetadataStore(url)
    try:
        return store.schema_revision()
    finally:
        store.close()


def log_runs(home: str, db_url: str, worker: int, runs: int) -> list[str]:
    """Log `runs` runs with params, tags and metric histories; return their ids."""
    import modelyard as my

    my.configure(home=home, db_url=db_url)
    ids = []
    for i in range(runs):
        with my.start_run(experiment="concurrent", run_name=f"w{worker}-r{i}") as run:
            run.log_params({"worker": worker, "i": i, "lr": 0.01 * (i + 1)})
            run.set_tag("worker", str(worker))
            for step in range(3):
                run.log_metric("loss", 1.0 / (step + 1 + i), step=step)
            run.log_metrics({"auc": worker + i / 1000, "f1": float(i)})
            ids.append(run.id)
    return ids


def register_versions(db_url: str, count: int) -> list[int]:
    """Register `count` versions of the model 'shared'; return their numbers."""
    from modelyard.registry import SqlRegistry
    from modelyard.store import ArtifactStore, MetadataStore

    registry = SqlRegistry(MetadataStore(db_url), ArtifactStore("memory://workers"))
    try:
        return [registry.create_version("shared", created_by="w").version for _ in range(count)]
    finally:
        registry.metadata.close()

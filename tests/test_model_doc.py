"""docs/model.md names, for every rule, the engine method that implements it: each must exist."""

import importlib
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ENGINE_REF = re.compile(r"`([a-z_]+)\.([A-Za-z_]+)`")


def _refs() -> list[tuple[str, str]]:
    text = (ROOT / "docs" / "model.md").read_text(encoding="utf-8")
    refs = []
    in_rules_table = False
    for line in text.splitlines():
        if not line.startswith("|"):
            in_rules_table = False
            continue
        last_cell = line.rstrip("|").rsplit("|", 1)[-1].strip()
        if last_cell == "engine":  # the header of a rules table
            in_rules_table = True
        elif in_rules_table:
            refs += ENGINE_REF.findall(last_cell)
    return refs


def test_the_rules_tables_name_engine_methods():
    assert len(_refs()) >= 60


def test_every_named_engine_method_exists():
    missing = []
    for module_name, attr in _refs():
        module = importlib.import_module(f"lazytsc.{module_name}")
        owners = [module] + [v for v in vars(module).values() if isinstance(v, type) and v.__module__ == module.__name__]
        if not any(hasattr(owner, attr) or hasattr(owner, f"_{owner.__name__}{attr}") for owner in owners):
            missing.append(f"{module_name}.{attr}")
    assert missing == []

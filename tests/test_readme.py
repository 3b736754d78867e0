"""The README documents every setting the code reads from the environment."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# env_int("NAME", ...), env_bool(...), env_list(...), os.environ.get("NAME"...), os.environ["NAME"]
READ = re.compile(
    r"""(?:env_(?:int|bool|list)\(|os\.environ(?:\.get\(|\[))\s*["']([A-Z0-9_]+)["']"""
)
NOT_SETTINGS = {"DJANGO_SETTINGS_MODULE"}


def variables_read() -> set[str]:
    names: set[str] = set()
    for path in [*(ROOT / "qdash").glob("*.py"), *(ROOT / "scheduler").rglob("*.py")]:
        names |= set(READ.findall(path.read_text()))
    return names - NOT_SETTINGS


def test_every_environment_setting_is_in_the_readme_tables() -> None:
    readme = (ROOT / "README.md").read_text()
    rows = set(re.findall(r"^\| `([A-Z0-9_]+)` \|", readme, re.MULTILINE))
    read = variables_read()
    assert {"DATABASE_URL", "QDASH_VISIBILITY", "QDASH_EXECUTORS"} <= read  # the scan works
    assert sorted(read - rows) == []
